"""contract.money: one way to write a price on every display."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contract.money import NNBSP, format_price


def test_euro_is_written_the_french_way():
    assert format_price(11999, "EUR") == f"119,99{NNBSP}€"
    assert format_price(123456789, "EUR") == f"1{NNBSP}234{NNBSP}567,89{NNBSP}€"
    assert format_price(5, "EUR") == f"0,05{NNBSP}€"


def test_other_currencies_and_no_price():
    assert format_price(1000, "SEK") == f"10,00{NNBSP}SEK"
    assert format_price(None, "EUR") == ""


@given(st.integers(0, 10**12))
def test_cents_survive_formatting(cents):
    text = format_price(cents, "EUR")
    digits = text.replace(NNBSP, "").replace(",", "").replace("€", "")
    assert int(digits) == cents
