"""Central's promotion and pictures reach the store's screens and labels, end to end.

Real parts: central over HTTP (SQLite), its media store and catalogue feed; the edge
node syncing from it (pictures downloaded once, checked, cached, served by its asset
server); a real Mosquitto; a player joined through its device session fetching the
picture from the edge; a simulated 4.2" label. A tap in the zone puts central's
promotion and picture on the screen; the label shows the bitmap rendered with them.
"""

from __future__ import annotations

import json
import urllib.request
from io import BytesIO

import pytest
from PIL import Image

from central.credentials import issue
from contract.session import DeviceSession
from edge.config import load_config
from edge.label_render import LabelContent, render_and_pack
from edge.node import EdgeNode
from firmware_sim.shelf_label import SimLabel
from signage.fetch import http_fetcher
from tests.central.conftest import make_central
from tests.edge.conftest import GTIN, LAYOUT, LOYALTY_KEY, query, wait_until
from vitrine.broker import free_port

from .fixtures import product_image
from .test_e2e import Screen, _tap

pytestmark = pytest.mark.integration
PROMO = "Offre centrale : -30 % cette semaine"
LABEL = "esl-central-1"


def _put_media(central, data: bytes) -> dict:
    req = urllib.request.Request(central.url + "/api/v1/admin/media", data=data, method="PUT")
    req.add_header("Authorization", f"Bearer {central.admin}")
    req.add_header("Content-Type", "image/jpeg")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201
        return json.loads(resp.read())


def test_central_promotion_and_picture_reach_screen_and_label(broker, tmp_path):
    central = make_central({"sqlite_path": str(tmp_path / "central.db")})
    edge = None
    try:
        buf = BytesIO()
        product_image().save(buf, "JPEG", quality=85)
        picture = buf.getvalue()
        media = _put_media(central, picture)
        assert central.api("PUT", "/api/v1/admin/feeds/catalogue", {"items": [
            {"gtin": GTIN, "name": "Chaussure centrale", "brand": "Acme", "category": "shoes",
             "promo": PROMO, "was_price_cents": 12999, "images": [media["sha256"]]}]})[0] == 200
        assert central.api("PUT", "/api/v1/admin/feeds/prices", {"items": [
            {"gtin": GTIN, "price_cents": 8999}]})[0] == 200

        layout = json.loads(json.dumps(LAYOUT))
        layout["devices"].append({"id": LABEL, "kind": "shelf_label", "zone": "shoes",
                                  "shelf": None, "gtin": GTIN, "size": "4.2"})
        (tmp_path / "layout.json").write_text(json.dumps(layout))
        broker.add_many([(d["id"], d["kind"]) for d in layout["devices"]])
        cfg = load_config(env={}, store_id=broker.store_id, db_path=tmp_path / "edge.db",
                          mqtt_port=broker.port, mqtt_password="edge-pw",
                          loyalty_keys="k1:" + LOYALTY_KEY.hex(),
                          layout_path=tmp_path / "layout.json", panel_port=0,
                          spotlight_min_show_s=0.0, central_url=central.url,
                          store_token=issue(central.db, "store", broker.store_id),
                          assets_port=free_port())
        edge = EdgeNode(cfg).start()
        wait_until(lambda: query(cfg.db_path, "SELECT promo FROM product_content WHERE gtin = ?"
                                 " AND promo = ?", GTIN, PROMO), 30)

        label_session = DeviceSession("127.0.0.1", broker.port, broker.store_id, LABEL,
                                      f"{LABEL}-pw", kind="shelf_label")
        label = SimLabel(LABEL, label_session.publish_json)
        label_session.on_command(label.on_command)
        label_session.start(wait=5)
        screen = Screen(broker, tmp_path)
        screen.player.fetch_asset = http_fetcher(edge.signage.assets_url)
        screen.start()
        try:
            _tap(broker, GTIN)
            meta = wait_until(lambda: screen.sink.last if screen.sink.last
                              and screen.sink.last["kind"] == "spotlight" else None, 30)
            assert meta["gtin"] == GTIN
            spot = screen.player._spot
            assert (spot.promo, spot.image, spot.price_cents, spot.was_price_cents) == (
                PROMO, media["sha256"], 8999, 12999)
            assert spot.name == "Chaussure centrale"
            # the screen got central's picture from the edge (never from central), intact
            assert screen.player.cache.has_asset(media["sha256"])
            assert screen.player.counters["assets_missing_total"] == 0

            expected = render_and_pack(
                LabelContent(GTIN, "Chaussure centrale", "Acme", 8999, "EUR", promo=PROMO,
                             was_price_cents=12999, image_key=media["sha256"]),
                "4.2", Image.open(BytesIO(picture)))
            wait_until(lambda: label.shown_hash == expected.hash, 30)
            wait_until(lambda: query(cfg.db_path, "SELECT 1 FROM shelf_labels WHERE "
                                     "device_id = ? AND acked_hash = ?", LABEL,
                                     expected.hash), 30)
        finally:
            screen.close()
            label_session.close(flush_timeout=1)
    finally:
        if edge is not None:
            edge.stop()
        for s in central.servers:
            s.stop()
        central.db.close()
