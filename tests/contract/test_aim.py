"""AIM symbology identifier stripping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.aim import AimPrefix, strip_aim


@pytest.mark.parametrize(
    ("text", "code", "modifier", "gs1", "rest"),
    [
        ("]Q1https://example.com", "Q", "1", False, "https://example.com"),
        ("]Q3010950600013435217261231", "Q", "3", True, "010950600013435217261231"),
        ("]E04006381333931", "E", "0", True, "4006381333931"),
        ("]E496385074", "E", "4", True, "96385074"),
        ("]C10109506000134352", "C", "1", True, "0109506000134352"),
        ("]C0ABC", "C", "0", False, "ABC"),
        ("]d20109506000134352", "d", "2", True, "0109506000134352"),
        ("]d1hello", "d", "1", False, "hello"),
        ("]e00109506000134352", "e", "0", True, "0109506000134352"),
        ("]E3400638133393112", "E", "3", False, "400638133393112"),
    ],
)
def test_known_prefixes(text: str, code: str, modifier: str, gs1: bool, rest: str) -> None:
    prefix, data = strip_aim(text)
    assert prefix is not None
    assert (prefix.code, prefix.modifier, prefix.gs1, data) == (code, modifier, gs1, rest)
    assert prefix.name != "unknown"
    assert prefix.identifier == text[:3]


def test_names_are_human_readable() -> None:
    assert strip_aim("]Q1x")[0] == AimPrefix("Q", "1", "QR Code", False)
    assert strip_aim("]Q3x")[0] == AimPrefix("Q", "3", "GS1 QR Code", True)
    assert strip_aim("]E0x")[0] == AimPrefix("E", "0", "EAN-13/UPC-A", True)
    assert strip_aim("]d2x")[0] == AimPrefix("d", "2", "GS1 DataMatrix", True)


@pytest.mark.parametrize("text", ["]X5data", "]zAdata", "]D2", "]q1data", "]Q9data"])
def test_unknown_well_formed_prefix_is_stripped(text: str) -> None:
    prefix, data = strip_aim(text)
    assert prefix == AimPrefix(text[1], text[2], "unknown", False)
    assert data == text[3:]


@pytest.mark.parametrize(
    "text", ["", "]", "]Q", "]1Q", "]Q-x", "Q1]data", " ]Q1data", "]]Q1", "]é1", "]Q١x", "hello"],
)
def test_no_prefix(text: str) -> None:
    assert strip_aim(text) == (None, text)


def test_only_the_first_prefix_is_stripped() -> None:
    assert strip_aim("]Q1]Q3abc") == (AimPrefix("Q", "1", "QR Code", False), "]Q3abc")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(min_size=3).map(lambda t: "]" + t)))
def test_strip_is_lossless(text: str) -> None:
    prefix, data = strip_aim(text)
    if prefix is None:
        assert data == text
    else:
        assert prefix.identifier + data == text
        assert prefix.code.isascii() and prefix.code.isalpha()
        assert prefix.modifier.isascii() and prefix.modifier.isalnum()
