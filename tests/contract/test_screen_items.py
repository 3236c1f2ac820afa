"""signage.items: the item parser refuses garbage and personal data, and round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.screen_items import ItemError, Spotlight, item_to_dict, parse_item

GTIN = "04063511002891"

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(data=_json | st.dictionaries(
    st.sampled_from(["kind", "id", "gtin", "name", "price_cents", "duration_s", "image",
                     "online", "currency", "title", "stock", "customer_id"]),
    _json | st.sampled_from(["spotlight", "text", "image", "promotion", GTIN, "EUR"]),
    max_size=8))
def test_parser_returns_an_item_or_item_error(data):
    try:
        item = parse_item(data)
    except ItemError:
        return
    assert parse_item(item_to_dict(item)) == item


def test_spotlight_round_trip():
    data = {"kind": "spotlight", "id": "s", "gtin": GTIN, "name": "Trail", "price_cents": 100,
            "currency": "EUR", "online": True, "duration_s": 8}
    item = parse_item(data)
    assert isinstance(item, Spotlight) and item.duration_s == 8.0
    assert parse_item(item_to_dict(item)) == item


@pytest.mark.parametrize("data, message", [
    ({"kind": "spotlight", "id": "s", "gtin": GTIN, "customer_id": "C0005278"}, "personal"),
    ({"kind": "text", "id": "t", "session_id": "x"}, "personal"),
    ({"kind": "video", "id": "v"}, "kind"),
    ({"kind": "text", "id": ""}, "id"),
    ({"kind": "text", "id": "t", "duration_s": 0}, "duration"),
    ({"kind": "text", "id": "t", "duration_s": float("nan")}, "duration"),
    ({"kind": "text", "id": "t", "duration_s": True}, "duration"),
    ({"kind": "spotlight", "id": "s", "gtin": "123"}, "gtin"),
    ({"kind": "spotlight", "id": "s", "gtin": GTIN, "price_cents": -1}, "price_cents"),
    ({"kind": "spotlight", "id": "s", "gtin": GTIN, "currency": "euro"}, "currency"),
    ({"kind": "image", "id": "i", "image": "../../etc/passwd"}, "asset"),
    ({"kind": "text", "id": "t", "colour": "red"}, "unknown"),
    ([], "object"),
])
def test_bad_items_are_refused_with_a_reason(data, message):
    with pytest.raises(ItemError, match=message):
        parse_item(data)
