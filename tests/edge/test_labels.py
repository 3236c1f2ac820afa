"""edge.labels: a price change reaches exactly the affected labels; acks say what is shown."""

from __future__ import annotations

import pytest

from contract.eslabel import decode_planes
from edge import db as edge_db
from edge.assets import AssetCache
from edge.content import add_images, set_content
from edge.demo_images import product_picture
from edge.labels import LabelService, seed_labels
from edge.seed import seed

GTINS = ["04063511002891", "09506000134352", "04012345000016"]


@pytest.fixture
def store(tmp_path):
    db = edge_db.connect(tmp_path / "edge.db")
    edge_db.migrate(db)
    layout = {"store_id": "s1", "products": [
        {"gtin": g, "name": f"Produit {i} été", "brand": "Kestrel", "price_cents": 1000 + i,
         "currency": "EUR"} for i, g in enumerate(GTINS)],
        "devices": [{"id": f"esl-{i:03d}", "kind": "shelf_label", "gtin": GTINS[i % 3],
                     "size": "4.2" if i % 5 == 0 else "2.9", "zone": "shoes"}
                    for i in range(12)]}
    seed(db, layout)
    assert seed_labels(db.conn, layout) == 12
    sent: list[tuple[str, str, dict]] = []
    assets = AssetCache(tmp_path / "assets")
    add_images(db.conn, assets, GTINS[0], [product_picture(GTINS[0], "x", "y", "shoes")])
    service = LabelService(db.conn, lambda f, d, p: sent.append((f, d, p)), assets=assets)
    return db, service, sent


def test_first_refresh_sends_every_label_a_bitmap_that_verifies(store):
    _db, service, sent = store
    assert service.refresh() == 12
    assert {d for _f, d, _p in sent} == {f"esl-{i:03d}" for i in range(12)}
    for family, _device, payload in sent:
        assert family == "label" and payload["cmd"] == "label_bitmap"
        bitmap = decode_planes(payload["width"], payload["height"], payload["planes"],
                               payload["hash"])
        assert bitmap.hash == payload["hash"]
    # identical products and sizes share one render
    assert service.counters["rendered_total"] == len({(GTINS[i % 3], i % 5 == 0)
                                                      for i in range(12)})
    assert service.refresh() == 0  # nothing changed, nothing sent


def test_price_change_reaches_only_the_labels_of_that_product(store):
    db, service, sent = store
    service.refresh()
    sent.clear()
    db.conn.execute("UPDATE products SET price_cents = 999 WHERE gtin = ?", (GTINS[1],))
    assert service.refresh([GTINS[1]]) == 4
    assert {d for _f, d, _p in sent} == {f"esl-{i:03d}" for i in range(12) if i % 3 == 1}
    assert all(p["price_cents"] == 999 for _f, _d, p in sent)


def test_promotion_change_is_a_change_too(store):
    db, service, sent = store
    service.refresh()
    sent.clear()
    set_content(db.conn, GTINS[2], promo="-30 %", was_price_cents=2000)
    assert service.refresh([GTINS[2]]) == 4


def test_acks_record_what_is_on_the_shelf(store):
    db, service, sent = store
    service.refresh()
    first = {d: p["hash"] for _f, d, p in sent}
    assert len(service.out_of_date()) == 12
    for device, h in first.items():
        assert service.acked(device, h, at=1.0)
    assert service.out_of_date() == []
    db.conn.execute("UPDATE products SET price_cents = 5 WHERE gtin = ?", (GTINS[0],))
    service.refresh([GTINS[0]])
    stale = service.out_of_date()
    assert {r["device_id"] for r in stale} == {f"esl-{i:03d}" for i in range(12) if i % 3 == 0}
    assert all(r["want_price_cents"] == 5 and r["acked_price_cents"] == 1000 for r in stale)
    # an old bitmap acked late is recorded as not current
    assert not service.acked("esl-000", first["esl-000"])
    assert service.counters["stale_acks_total"] == 1


def test_refused_bitmaps_are_counted_and_resent(store):
    db, service, sent = store
    service.clock = lambda: 1000.0
    service.refresh()
    service.refused("esl-001", "content hash does not match the planes")
    row = db.conn.execute("SELECT refused, last_error FROM shelf_labels WHERE device_id = "
                          "'esl-001'").fetchone()
    assert row[0] == 1 and "hash" in row[1]
    sent.clear()
    service.clock = lambda: 2000.0
    assert service.resend_unacked(older_than_s=60) == 12
    assert not service.acked("nobody", "0" * 64)
