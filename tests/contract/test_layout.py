"""The store layout file: the demo store is sound, and broken layouts say what is wrong."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pytest

from contract.gs1 import gtin_check_digit
from contract.layout import LayoutError, load_layout, parse_layout, valid_gtin14
from contract.scan import classify
from firmware_sim.layout import DEMO_LAYOUT

MINIMAL = {
    "store_id": "store-test",
    "zones": [{"id": "shoes", "name": "Shoes"}, {"id": "kitchen", "name": "Kitchen"}],
    "products": [{"gtin": "09506000134352", "name": "Trail shoe", "brand": "Acme",
                  "category": "shoes", "price_cents": 8999, "currency": "EUR"}],
    "devices": [{"id": "nfc-01", "kind": "nfc_reader", "zone": "shoes", "shelf": "S1"},
                {"id": "cam-01", "kind": "camera", "zone": "shoes"}],
    "tags": [{"uid": "04A1B2C3D4E5F6", "gtin": "09506000134352", "zone": "shoes",
              "shelf": "S1"}],
}


def test_gtin_check_digits():
    assert gtin_check_digit("0950600013435") == 2
    assert gtin_check_digit("400638133393") == 1  # EAN-13 4006381333931
    assert valid_gtin14("09506000134352")
    assert not valid_gtin14("09506000134353")
    assert not valid_gtin14("9506000134352")  # 13 digits
    assert not valid_gtin14("0950600013435X")


def test_demo_store_is_a_plausible_store():
    layout = load_layout(DEMO_LAYOUT)
    assert layout.store_id == "store-001"
    assert [z.id for z in layout.zones] == ["entrance", "shoes", "outdoor", "kitchen",
                                           "electronics", "checkout"]
    kinds = Counter(d.kind for d in layout.devices)
    assert kinds == {"nfc_reader": 10, "qr_scanner": 4, "camera": 1, "kiosk": 2, "signage": 2}
    assert len(layout.products) == 30 and len(layout.tags) == 40
    assert len(layout.customers) == 20
    assert 1 <= sum(not t.ndef for t in layout.tags) <= 6
    assert {p.currency for p in layout.products} == {"EUR"}
    for zone in ("shoes", "outdoor", "kitchen", "electronics"):
        assert layout.devices_in(zone, "nfc_reader") and layout.tags_in(zone)
    reader_shelves = {d.shelf for d in layout.devices if d.kind == "nfc_reader"}
    assert {t.shelf for t in layout.tags} <= reader_shelves
    # What a tag or shelf label carries is a Digital Link the edge resolves to the product.
    for tag in layout.tags:
        assert classify(layout.digital_link(tag.gtin)).gtin == tag.gtin
        assert tag.uid == tag.uid.lower() and len(tag.uid) == 14
    assert any(c.has_app for c in layout.customers)
    assert any(not c.has_app for c in layout.customers)


def test_round_trip_and_lookups():
    layout = load_layout(DEMO_LAYOUT)
    again = parse_layout(json.loads(json.dumps(layout.to_dict())))
    assert again == layout
    product = layout.product("09506000134352")
    assert product.name == "Vitrine Demo Mug"
    assert layout.digital_link(product.gtin) == "https://id.gs1.org/01/09506000134352"
    assert layout.products_in("checkout")


def test_minimal_layout_as_the_edge_tests_write_it():
    layout = parse_layout(MINIMAL)
    assert layout.tags[0].uid == "04a1b2c3d4e5f6"  # normalised as nfcpy reports UIDs
    assert layout.tags[0].ndef is True and layout.customers == []
    assert layout.devices[1].shelf is None and layout.products[0].zone is None


def _broken(**changes) -> dict:
    data = copy.deepcopy(MINIMAL)
    for key, value in changes.items():
        data[key] = value
    return data


@pytest.mark.parametrize(("data", "expected"), [
    (_broken(store_id="store/1"), "store_id: invalid"),
    (_broken(format="vitrine-layout/9"), "format: expected"),
    (_broken(zones=[{"id": "shoes", "name": "A"}, {"id": "shoes", "name": "B"}]),
     "duplicate zone 'shoes'"),
    (_broken(devices=[{"id": "nfc-01", "kind": "nfc_reader", "zone": "garden"}]),
     "unknown zone 'garden'"),
    (_broken(devices=[{"id": "nfc-01", "kind": "toaster", "zone": "shoes"}]),
     "unknown kind 'toaster'"),
    (_broken(devices=[{"id": "nfc 01", "kind": "nfc_reader", "zone": "shoes"}]),
     "invalid id"),
    (_broken(devices=[{"id": "nfc-01", "kind": "nfc_reader", "zone": "shoes"}] * 2),
     "duplicate device 'nfc-01'"),
    (_broken(devices=[{"id": "nfc-01", "kind": "nfc_reader"}]), "devices[0]"),
    (_broken(devices=[{"id": "nfc-01", "kind": "nfc_reader", "zone": "shoes", "x": 1}]),
     "unexpected keyword"),
    (_broken(products=[{**MINIMAL["products"][0], "gtin": "09506000134353"}]),
     "valid check digit"),
    (_broken(products=[{**MINIMAL["products"][0], "gtin": "9506000134352"}]),
     "14-digit GTIN"),
    (_broken(products=[{**MINIMAL["products"][0], "price_cents": -1}]), "price_cents"),
    (_broken(products=[{**MINIMAL["products"][0], "currency": "euro"}]), "currency"),
    (_broken(tags=[{"uid": "04a1b2c3d4e5f6", "gtin": "04006381333931", "zone": "shoes"}]),
     "unknown gtin"),
    (_broken(tags=[{"uid": "not-hex", "gtin": "09506000134352", "zone": "shoes"}]),
     "uid must be"),
    (_broken(customers=[{"id": "C0000001", "card_uid": "04A1B2C3D4E5F6"}]),
     "duplicate uid '04a1b2c3d4e5f6'"),
    (_broken(customers=[{"id": "alice", "card_uid": "a3f2910c"}]), "look like C0001234"),
    (_broken(zones="shoes"), "zones: must be a list"),
    (_broken(products=[{**MINIMAL["products"][0], "price_cents": "8999"}]),
     "products[0]: wrong type for price_cents"),
    (_broken(tags=[{"uid": 4660, "gtin": "09506000134352", "zone": ["shoes"]}]),
     "wrong type for uid, zone"),
    (_broken(customers=[3]), "customers[0]: "),
])
def test_invalid_layouts_are_rejected_with_the_reason(data, expected):
    with pytest.raises(LayoutError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        parse_layout(data)


def test_every_problem_is_reported_at_once():
    data = _broken(devices=[{"id": "nfc-01", "kind": "toaster", "zone": "garden"}],
                   tags=[{"uid": "xyz", "gtin": "1", "zone": "shoes"}])
    with pytest.raises(LayoutError) as err:
        parse_layout(data)
    message = str(err.value)
    for part in ("unknown kind", "unknown zone", "uid must be", "unknown gtin"):
        assert part in message


def test_unreadable_files(tmp_path: Path):
    bad = tmp_path / "layout.json"
    bad.write_text("{not json")
    with pytest.raises(LayoutError, match="not JSON"):
        load_layout(bad)
    bad.write_text("[]")
    with pytest.raises(LayoutError, match="JSON object"):
        load_layout(bad)
