"""Erasure reaches an edge that was offline when it was issued (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from edge import erasure
from edge.db import connect, migrate
from edge.forwarder import Forwarder
from edge.sync import SyncClient
from tests.central.conftest import (
    STORE,
    Central,
    grant,
    interest,
    presence,
)
from tests.edge.conftest import wait_until

T0 = time.time() - 3600  # recent: the forwarder expires month-old tracking rows


def outbox(conn: sqlite3.Connection, event: dict[str, Any], kind: str | None = None) -> None:
    """An outbox row as edge/pipeline.py writes it."""
    key = event.get("customer_id") or event.get("session_id") or "-"
    conn.execute("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at) "
                 "VALUES (?, ?, ?, ?, ?)", (event.get("event_id") or event["order_id"],
                                            kind or event["type"], key, json.dumps(event), T0))


def raw(conn: sqlite3.Connection, device: str, msg_id: str, at: float) -> None:
    conn.execute("INSERT INTO events (device_id, msg_id, channel, received_at, device_ts, "
                 "payload) VALUES (?, ?, 'nfc', ?, ?, '{}')", (device, msg_id, at, at))


def edge_with_two_customers(path: Path) -> sqlite3.Connection:
    db = connect(path)
    migrate(db)
    conn = db.conn
    # As edge/sessions.py records them: c1 identified by reads at a shared reader
    # (one-read sessions), c2 too, and c1 again at a kiosk (linked here, never forwarded).
    sessions = [("s1", "nfc-01", "c1", T0 + 5, T0 + 5, "read"),
                ("s1g", "nfc-01", "c1", T0 + 20, T0 + 20, "read"),
                ("s2", "nfc-02", "c2", T0 + 10, T0 + 10, "read"),
                ("s1b", "kiosk-01", "c1", T0 + 100, T0 + 110, "kiosk")]
    conn.executemany("INSERT INTO sessions (session_id, device_id, customer_id, started_at, "
                     "last_at, kind) VALUES (?, ?, ?, ?, ?, ?)", sessions)
    # Other shoppers' anonymous taps on the same reader, between and after c1's reads,
    # and on the kiosk before c1 identified there: none of them is c1's.
    for device, msg, at, customer in [
            ("nfc-01", "a", T0 + 5, "c1"), ("nfc-01", "anon-between", T0 + 10, None),
            ("nfc-01", "b", T0 + 20, "c1"), ("nfc-01", "anon", T0 + 50, None),
            ("kiosk-01", "anon-kiosk", T0 + 99, None), ("kiosk-01", "c", T0 + 105, "c1"),
            ("nfc-02", "d", T0 + 10, "c2")]:
        raw(conn, device, msg, at)
        if customer:
            conn.execute("INSERT INTO event_customers VALUES (?, ?, ?)", (device, msg, customer))
    for ev in [presence("c1", "s1", at=T0 + 5), interest("s1g", customer="c1", at=T0 + 20),
               presence("c2", "s2", at=T0 + 10), interest("s2", customer="c2", at=T0 + 12)]:
        outbox(conn, ev)
    conn.execute("INSERT INTO security_events VALUES ('sec-1', ?, 'nfc-01', 'replay', 'c1')",
                 (T0,))
    return conn


def count(conn: sqlite3.Connection, sql: str) -> int:
    return conn.execute(sql).fetchone()[0]


def test_erasure_issued_while_edge_offline_reaches_it(central: Central, tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    conn = edge_with_two_customers(path)
    grant(central, "c1", at=T0 - 100)
    grant(central, "c2", at=T0 - 100)
    fwd = Forwarder(path, central.url, central.store_token)
    try:
        assert fwd.drain_once() == 4
    finally:
        fwd.close()
    # Not forwarded yet when the edge goes offline: a tap of the local-only session, an order.
    outbox(conn, interest("s1b", customer="c1", at=T0 + 105))
    order = {"order_id": "o-1", "channel": "kiosk", "customer_id": "c1", "created_at": T0,
             "fulfilment": {"type": "click_and_collect", "store_id": STORE},
             "lines": [{"gtin": "00000000000017", "quantity": 1}]}
    outbox(conn, order, kind="order")

    status, body = central.api("DELETE", "/api/v1/customers/c1")
    assert status == 202, body

    sync = SyncClient(str(path), central.url, central.store_token,
                      {"catalogue": 0, "prices": 0, "stock": 0, "erasures": 60},
                      store_id=STORE)
    try:
        sync.start()  # the edge comes back: the erasure feed is due at once
        wait_until(lambda: count(conn, "SELECT count(*) FROM erasures_applied") == 1, timeout=10)
        assert count(conn, "SELECT count(*) FROM sessions WHERE customer_id = 'c1'") == 0
        assert {r[0] for r in conn.execute("SELECT msg_id FROM events")} == {
            "anon-between", "anon", "anon-kiosk", "d"}  # exactly c1's reads went
        assert count(conn, "SELECT count(*) FROM event_customers WHERE customer_id = 'c1'") == 0
        left = [(r[0], json.loads(r[1]).get("customer_id")) for r in conn.execute(
            "SELECT kind, payload FROM outbox ORDER BY seq")]
        assert left == [("presence", "c2"), ("interest", "c2"), ("order", "c1")]
        assert count(conn, "SELECT count(*) FROM security_events") == 0
        # 3 raw events, 3 outbox rows (sent ones are kept 3 days), 1 security, 3 sessions.
        assert count(conn, "SELECT rows_deleted FROM erasures_applied") == 10
        assert sync.metrics()["erased_rows_total"] == 10
        # Idempotent: pulling again, or replaying the same order, deletes nothing more.
        assert sync.sync_once("erasures") == 0
        status, feed = central.api("GET", f"/api/v1/stores/{STORE}/erasures?since=0",
                                   token=central.store_token)
        conn.execute("BEGIN IMMEDIATE")
        assert erasure.apply(conn, feed["erasures"]) == 0
        conn.execute("COMMIT")
        assert count(conn, "SELECT count(*) FROM sessions") == 1
    finally:
        sync.stop()
        conn.close()
