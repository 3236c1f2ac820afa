"""The click & collect store picker: the store directory's parser, the ordering (nearest
with stock first), and the flow picking a store against the edge's real stock view."""

from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.stores import DirectoryError, load_directory, parse_directory, store_options
from tests.edge.conftest import GTIN

DIRECTORY = [{"id": "store-lyon", "name": "Lyon Part-Dieu", "distance_km": 4.2},
             {"id": "store-villeurbanne", "name": "Villeurbanne", "distance_km": 2.0},
             {"id": "store-paris", "name": "Paris Opéra", "distance_km": 465}]


def test_nearest_with_stock_first_then_the_rest():
    views = {"A": {"other_stores": {"store-lyon": 5, "store-villeurbanne": 1,
                                    "store-paris": 9, "store-x": 4}},
             "B": {"other_stores": {"store-lyon": 2, "store-villeurbanne": 3, "store-x": 1,
                                    "store-paris": 3}}}
    rows = store_options(views, {"A": 2, "B": 1}, parse_directory(DIRECTORY))
    assert [(r["store_id"], r["available"], r["quantity"]) for r in rows] == [
        ("store-lyon", True, 2), ("store-paris", True, 3),   # 4.2 km, then 465 km
        ("store-x", True, 1),                                # in stock, distance unknown
        ("store-villeurbanne", False, 1)]                    # nearest, but A short
    assert rows[0]["name"] == "Lyon Part-Dieu" and rows[2]["name"] == "store-x"
    assert store_options({}, {"A": 1}, {}) == []


@pytest.mark.parametrize(("data", "where"), [
    ({"id": "x"}, "a list"),
    ([{"id": "a/b", "name": "x"}], "[0].id"),
    ([{"id": "s1", "name": "x"}, {"id": "s1", "name": "y"}], "[1].id"),
    ([{"id": "s1", "name": " "}], "[0].name"),
    ([{"id": "s1", "name": "x", "distance_km": -1}], "[0].distance_km"),
    ([{"id": "s1", "name": "x", "distance_km": True}], "[0].distance_km"),
    ([{"id": "s1", "name": "x", "phone": "1"}], "[0]"),
])
def test_a_bad_directory_is_refused_saying_where(data, where):
    with pytest.raises(DirectoryError, match=where.replace("[", r"\[").replace("]", r"\]")):
        parse_directory(data)


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c,
                                                                         max_size=4)))
def test_the_directory_parser_refuses_or_returns_clean_rows(data):
    try:
        out = parse_directory(data)
    except DirectoryError:
        return
    for entry in out.values():
        assert set(entry) == {"name", "distance_km"} and entry["name"]


def test_directory_file_errors_name_the_file(tmp_path):
    path = tmp_path / "stores.json"
    path.write_text("[{")
    with pytest.raises(DirectoryError, match="stores.json"):
        load_directory(path)
    path.write_text(json.dumps(DIRECTORY))
    assert set(load_directory(path)) == {"store-lyon", "store-villeurbanne", "store-paris"}
    assert load_directory(None) == {}


def test_collect_in_another_store_from_the_edge_stock_view(flow, store_db, requester):
    flow.store_directory = parse_directory(DIRECTORY)
    flow.start()
    flow.open_product(GTIN)
    flow.add_to_cart()
    flow.show_stores()
    assert flow.screen == "stores" and requester.calls[-1] == "stock"
    # the edge's view has Lyon with 7; the directory adds the others it does not stock
    assert [(r["store_id"], r["available"]) for r in flow.shopper.stores] == [
        ("store-lyon", True), ("store-villeurbanne", False), ("store-paris", False)]
    flow.pick_store("store-paris")  # no stock there: not choosable
    assert flow.screen == "stores" and flow.shopper.collect_store is None
    flow.pick_store("store-lyon")
    assert flow.screen == "cart" and flow.collect_store_name == "Lyon Part-Dieu"
    assert flow.checkout() is True
    conn = sqlite3.connect(store_db)
    [(payload,)] = conn.execute("SELECT payload FROM kiosk_orders").fetchall()
    conn.close()
    assert json.loads(payload)["fulfilment"] == {"type": "click_and_collect",
                                                 "store_id": "store-lyon"}
    flow.open_product(GTIN)
    flow.pick_store("store-lyon")
    flow.add_to_cart()  # another line: the store picked may not hold it, pick again
    assert flow.shopper.collect_store is None and flow.collect_store_name is None
    requester.down = True  # the edge does not answer: the shopper is told, no picker
    flow.show_stores()
    assert flow.screen == "cart" and flow.message.key == "store_unreachable"
