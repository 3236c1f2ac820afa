"""Proof of play from a screen to central: pipeline -> outbox -> forwarder -> attribution.

The edge's real pipeline records a screen's proof of play and a shopper's tap in the
same zone; the real forwarder drains the outbox to central over HTTP (SQLite and
PostgreSQL); central stores the play and attributes the tap to it.
"""

from __future__ import annotations

import base64
import json
import time

from contract.ndef_codec import encode_uri
from edge.catalogue import Catalogue
from edge.db import connect, migrate
from edge.forwarder import Forwarder
from edge.identity import Identifier
from edge.inbound import Inbound
from edge.metrics import Metrics
from edge.pipeline import Pipeline
from edge.registry import Registry
from edge.seed import seed
from edge.sessions import Sessions
from tests.central.conftest import Central, make_central

from .conftest import GTIN, LAYOUT, LOYALTY_KEY

STORE = LAYOUT["store_id"]


def _msg(n: int, device: str, channel: str, body: dict, ts: float) -> Inbound:
    return Inbound(n, 1, f"vitrine/v1/{STORE}/devices/{device}/{channel}",
                   json.dumps({"msg_id": f"{device}-{n}", "ts": ts, **body}).encode(), ts)


def test_play_and_tap_in_a_zone_reach_central_attributed(backend, tmp_path):
    from central.credentials import issue

    central: Central = make_central(backend)
    try:
        token = issue(central.db, "store", STORE)
        db = connect(tmp_path / "edge.db")
        migrate(db)
        seed(db, LAYOUT)
        pipeline = Pipeline(db, STORE, catalogue=Catalogue(db),
                            identifier=Identifier({"k1": LOYALTY_KEY}),
                            sessions=Sessions(db.conn, 90), registry=Registry(),
                            metrics=Metrics())
        t0 = round(time.time()) - 120.0
        ndef = base64.b64encode(encode_uri(f"https://id.gs1.org/01/{GTIN}")).decode()
        pipeline.process_batch([
            _msg(1, "sign-01", "telemetry", {}, t0 - 30),
            _msg(2, "nfc-01", "nfc", {"uid": "04aabbccddee01", "ndef": ndef}, t0 + 20),
            _msg(3, "sign-01", "play", {
                "screen_id": "sign-01", "zone": "shoes", "item_id": f"tap-{GTIN}",
                "kind": "spotlight", "playlist_id": None, "trigger": "tap", "gtin": GTIN,
                "started_at": t0, "duration_s": 15.0}, t0 + 15)])
        kinds = sorted(k for (k,) in db.conn.execute("SELECT kind FROM outbox"))
        assert kinds == ["interest", "play"]
        fwd = Forwarder(tmp_path / "edge.db", central.url, token)
        try:
            assert fwd.drain_once() == 2
        finally:
            fwd.close()
        assert db.conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL "
                               "OR last_error IS NOT NULL").fetchone()[0] == 0
        rows = central.db.run(lambda tx: tx.all(
            "SELECT a.screen_id, a.item_id, a.same_product, a.lag_s, e.kind, e.zone "
            "FROM screen_attributions a JOIN events e ON e.event_id = a.interest_event_id"),
            write=False)
        assert [dict(r) for r in rows] == [{"screen_id": "sign-01", "item_id": f"tap-{GTIN}",
                                            "same_product": 1, "lag_s": 5.0,
                                            "kind": "interest", "zone": "shoes"}]
    finally:
        for s in central.servers:
            s.stop()
        central.db.close()
