"""The home delivery form's rules: capped while typing, checked on "Continue", and what it
lets through is always a valid order request; the flow around it, against the real edge."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from contract.requests import REQUEST_OPS
from kiosk.address import FIELDS, clip, one_line, validate
from kiosk.i18n import STRINGS
from tests.edge.conftest import GTIN_2

GOOD = {"name": "Camille Martin", "line1": "12 rue de la République", "line2": "3e étage",
        "postcode": "69002", "city": "Lyon"}


def test_a_good_address_is_kept_clean():
    checked = validate({**GOOD, "line1": "  12   rue de la\tRépublique "})
    assert checked.errors == {} and checked.address == GOOD
    assert one_line(checked.address) == "12 rue de la République, 3e étage, 69002 Lyon"
    no_line2 = validate({k: v for k, v in GOOD.items() if k != "line2"})
    assert no_line2.address is not None and "line2" not in no_line2.address


def test_each_wrong_field_gets_its_own_error():
    checked = validate({"name": "1234", "line1": "12", "postcode": "00123", "city": "L1on"})
    assert checked.address is None
    assert checked.errors == {"name": "address_bad_name", "line1": "address_bad_street",
                              "postcode": "address_bad_postcode", "city": "address_bad_city"}
    empty = validate({})
    assert empty.errors == {f: "address_required" for f in ("name", "line1", "postcode", "city")}
    assert all(key in STRINGS for key in {*checked.errors.values(), *empty.errors.values()})


def test_typing_never_overflows_a_field():
    assert clip("postcode", "69a0 0-2\n9") == "69002"
    assert clip("city", "Lyon\nRhône\x00") == "Lyon Rhône "
    assert len(clip("line1", "x" * 500)) == FIELDS["line1"]


@given(st.dictionaries(st.sampled_from(list(FIELDS)), st.text(max_size=300)))
def test_any_typing_gives_capped_fields_and_only_valid_requests(typed):
    for name, text in typed.items():
        kept = clip(name, text)
        assert len(kept) <= FIELDS[name] and "\n" not in kept and clip(name, kept) == kept
    checked = validate(typed)
    assert (checked.address is None) == bool(checked.errors)
    if checked.address is not None:  # what the form lets through, the edge accepts
        REQUEST_OPS["order_place"].check_request({
            "client_order_id": "co-1", "lines": [{"gtin": GTIN_2, "quantity": 1}],
            "fulfilment": {"type": "home_delivery", "address": checked.address}})


def test_home_delivery_asks_the_address_then_orders_with_it(flow, store_db, payments):
    flow.start()
    flow.open_product(GTIN_2)
    flow.add_to_cart()
    flow.set_fulfilment("home_delivery")
    assert flow.screen == "address"
    assert flow.checkout() is False and flow.screen == "address"  # no address: no order
    for name, text in {**GOOD, "postcode": "6900"}.items():
        flow.address_field(name, text)
    assert flow.submit_address() is False
    assert flow.shopper.address_errors == {"postcode": "address_bad_postcode"}
    flow.address_field("postcode", "69002")
    assert flow.submit_address() is True and flow.screen == "cart"
    assert flow.checkout() is True and payments.total_charged == 3999
    conn = sqlite3.connect(store_db)
    [(payload,)] = conn.execute("SELECT payload FROM kiosk_orders").fetchall()
    conn.close()
    assert '"type": "home_delivery"' in payload and '"postcode": "69002"' in payload
    flow.done()  # the next shopper finds an empty form
    assert flow.shopper.address is None and flow.shopper.address_form == {}
