"""The edge's writer core in the test process: real pipeline, sessions, router, SQLite.

Kiosk requests go through the kit's real request router (envelope, kind check,
schemas, one transaction, stored replies) and card taps through the real
pipeline (token verification, sessions, presence), without MQTT in between;
the window tests in ``tests/kiosk/test_ui.py`` add Mosquitto and a real edge.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from contract.loyalty import issue_token
from contract.ndef_codec import encode_uri
from contract.requests import RequestError, build_request, parse_reply
from contract.topics import device_topic, request_topic
from edge.config import load_config
from edge.db import connect, migrate
from edge.inbound import Inbound
from edge.metrics import Metrics
from edge.seed import seed
from edge.writer_core import build_writer_core

from .conftest import LAYOUT, LOYALTY_KEY

STORE = LAYOUT["store_id"]
CARD_UID = "04c0ffee000001"


def card_ndef(customer_id: str, uid: str = CARD_UID) -> str:
    """A loyalty card's NDEF (base64), as the kiosk's reader reads it."""
    token = issue_token(LOYALTY_KEY, customer_id, kind="card", now=time.time(),
                        ttl_s=365 * 86400, card_uid=uid)
    return base64.b64encode(encode_uri(f"https://vitrine.example/l/{token}")).decode()


class StoreHarness:
    def __init__(self, tmp_path: Path, *, layout: dict[str, Any] | None = None,
                 central_url: str = "") -> None:
        self.cfg = load_config(env={}, store_id=STORE, db_path=tmp_path / "edge.db",
                               mqtt_password="unused", loyalty_keys="k1:" + LOYALTY_KEY.hex(),
                               central_url=central_url, store_token="t" if central_url else "",
                               panel_port=0)
        self.db = connect(self.cfg.db_path)
        migrate(self.db)
        seed(self.db, layout or LAYOUT)
        self.conn = self.db.conn
        self.core = build_writer_core(self.cfg, self.db, Metrics())
        self.n = 0

    def close(self) -> None:
        self.conn.close()

    def _inbound(self, topic: str, payload: dict[str, Any]) -> Inbound:
        self.n += 1
        return Inbound(self.n, 1, topic, json.dumps(payload).encode(), time.time())

    def tap(self, device_id: str, uid: str, ndef: str | None) -> list[tuple[str, dict]]:
        """An NFC read published by ``device_id``; returns the derived events."""
        item = self._inbound(device_topic(STORE, device_id, "nfc"), {
            "msg_id": f"t{self.n}", "ts": time.time(), "uid": uid, "ndef": ndef})
        result = self.core.pipeline.process_batch([item])
        return [(kind, event) for kind, event, _text in result.events]

    def identify(self, device_id: str, customer_id: str) -> str:
        """A card tapped at ``device_id``: the session the edge opened for the customer."""
        events = self.tap(device_id, CARD_UID, card_ndef(customer_id))
        [presence] = [e for k, e in events if k == "presence"]
        assert presence["customer_id"] == customer_id
        return presence["session_id"]

    def ask(self, device_id: str, op: str, body: Any, request_id: str | None = None
            ) -> dict[str, Any]:
        """One request through the router; the reply body, or its ``RequestError``."""
        self.n += 1
        envelope = {"request_id": request_id or f"r{self.n}", "op": op, "body": body}
        item = Inbound(self.n, 1, request_topic(STORE, device_id),
                       json.dumps(envelope).encode(), time.time())
        [out] = self.core.requests.process([item])
        reply = parse_reply(out.payload)
        if not reply.ok:
            assert reply.error is not None
            raise reply.error
        assert reply.body is not None
        return reply.body


__all__ = ["CARD_UID", "STORE", "StoreHarness", "RequestError", "build_request", "card_ndef"]
