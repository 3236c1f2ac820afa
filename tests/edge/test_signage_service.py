"""edge.signage_service: playlists per screen, spotlights enriched and debounced, price fan-out."""

from __future__ import annotations

import json
import time

import pytest

from contract.playlists import parse_playlists
from contract.screen_items import parse_item
from edge import db as edge_db
from edge.content import set_content
from edge.labels import LabelService, seed_labels
from edge.seed import seed
from edge.signage_service import SignageService, store_playlists

G1, G2 = "04063511002891", "09506000134352"
PLAYLISTS = {"format": "vitrine-playlist/1", "playlists": [
    {"id": "all", "default": True, "zones": ["*"], "items": [{"kind": "text", "id": "t"}]},
    {"id": "shoes", "zones": ["shoes"], "items": [{"kind": "text", "id": "s"}]},
    {"id": "one", "screens": ["sign-2"], "items": [{"kind": "text", "id": "o"}]}]}


class Clock:
    def __init__(self):
        self.now = time.time() + 10  # ahead of the seed's real-time updated_at

    def __call__(self):
        return self.now


@pytest.fixture
def edge(tmp_path):
    db = edge_db.connect(tmp_path / "edge.db")
    edge_db.migrate(db)
    layout = {"store_id": "store-001", "products": [
        {"gtin": G1, "name": "Trail Runner 2", "brand": "Kestrel", "price_cents": 11999},
        {"gtin": G2, "name": "Gourde", "brand": "Alp", "price_cents": 1500}],
        "devices": [{"id": "sign-1", "kind": "signage", "zone": "shoes"},
                    {"id": "sign-2", "kind": "signage", "zone": "outdoor"},
                    {"id": "esl-1", "kind": "shelf_label", "gtin": G1},
                    {"id": "esl-2", "kind": "shelf_label", "gtin": G2}]}
    seed(db, layout)
    seed_labels(db.conn, layout)
    sent: list[tuple] = []
    clock = Clock()
    publish = lambda family, device, payload, retain=False: sent.append(  # noqa: E731
        (family, device, payload, retain))
    labels = LabelService(db.conn, lambda f, d, p: publish(f, d, p), clock=clock)
    svc = SignageService(db.conn, "store-001", publish, labels=labels, clock=clock)
    return db, svc, sent, clock


def test_each_screen_gets_its_own_playlists_retained_once_per_version(edge):
    db, svc, sent, _clock = edge
    store_playlists(db.conn, json.dumps(PLAYLISTS))
    assert svc.deliver_playlists() == 2
    by_screen = {d: p for _f, d, p, retain in sent if retain}
    assert set(by_screen) == {"sign-1", "sign-2"}
    assert {p["id"] for p in by_screen["sign-1"]["playlists"]["playlists"]} == {"all", "shoes"}
    assert {p["id"] for p in by_screen["sign-2"]["playlists"]["playlists"]} == {"all", "one"}
    assert parse_playlists(by_screen["sign-1"]["playlists"]).version == \
        by_screen["sign-1"]["version"]
    assert svc.deliver_playlists() == 0  # unchanged: nothing resent
    doc = dict(PLAYLISTS, playlists=PLAYLISTS["playlists"][:2])
    store_playlists(db.conn, json.dumps(doc))
    assert svc.deliver_playlists() == 1  # only sign-2 lost a playlist


def test_spotlight_is_enriched_without_personal_data_and_debounced(edge):
    db, svc, sent, clock = edge
    set_content(db.conn, G1, promo="-20 %", was_price_cents=14999, images=["a" * 64])
    db.conn.execute("INSERT INTO sync_stock VALUES ('store-001', ?, 7, 999.0)", (G1,))
    db.conn.execute("INSERT INTO sync_stock VALUES ('web-warehouse', ?, 40, 999.0)", (G1,))
    svc.offer("sign-1", {"cmd": "show_product", "cmd_id": "c1", "ts": 1.0, "zone": "shoes",
                         "gtin": G1})
    (_f, device, cmd, retain), = sent
    assert device == "sign-1" and not retain
    assert cmd["promo"] == "-20 %" and cmd["stock"] == 7 and cmd["online"] is True
    assert cmd["image"] == "a" * 64 and cmd["price_cents"] == 11999
    assert not {"customer_id", "session_id"} & cmd.keys()
    # the player accepts exactly this as a screen item
    fields = {k: v for k, v in cmd.items() if k not in ("cmd", "cmd_id", "ts", "zone")}
    parse_item({"kind": "spotlight", "id": "x", **fields})
    sent.clear()
    clock.now += 1
    svc.offer("sign-1", {"cmd": "show_product", "cmd_id": "c2", "ts": 2.0, "gtin": G2})
    assert sent == [] and svc.counters["spotlights_held_total"] == 1
    clock.now += 3
    svc.poll()
    assert [(d, c["gtin"]) for f, d, c, _r in sent if f == "signage"] == [("sign-1", G2)]


def test_price_change_updates_the_screen_showing_it_and_its_labels(edge):
    db, svc, sent, clock = edge
    svc.labels.refresh()
    svc.offer("sign-1", {"cmd": "show_product", "cmd_id": "c1", "ts": 1.0, "gtin": G1})
    sent.clear()
    clock.now += 2
    db.conn.execute("UPDATE products SET price_cents = 9999, updated_at = ? WHERE gtin = ?",
                    (clock.now, G1))
    svc.poll()
    kinds = sorted((f, d, p["cmd"], p.get("price_cents")) for f, d, p, _r in sent)
    assert kinds == [("label", "esl-1", "label_bitmap", 9999),
                     ("signage", "sign-1", "show_product", 9999)]
    sent.clear()
    svc.poll()
    assert sent == []  # the change was handled once
    for device, want in db.conn.execute("SELECT device_id, want_hash FROM shelf_labels"):
        svc.labels.acked(device, want)  # both labels show their current bitmap
    clock.now += 60  # spotlight over: a later change goes to labels only
    db.conn.execute("UPDATE products SET price_cents = 9899, updated_at = ? WHERE gtin = ?",
                    (clock.now, G1))
    svc.poll()
    assert [(f, d) for f, d, _p, _r in sent] == [("label", "esl-1")]
