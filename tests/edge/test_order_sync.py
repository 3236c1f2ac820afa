"""Orders between the store and central, both ways, with the real parts.

The kiosk's orders go through the edge's real request router (``StoreHarness``),
the panel's pickup queue through its Flask app, the store's changes to central
through the real forwarder, central's changes back through the real sync client,
against central served over HTTP on SQLite and on PostgreSQL (``central``). The
nudge test adds the real Mosquitto and the edge node.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.credentials import issue
from central.order_push import OrderBridge
from central.stock_push import BrokerTarget, StockPublisher
from contract.order_push import sync_orders_topic
from contract.stock_push import sync_stock_topic
from edge import order_feed
from edge.central_client import SyncError
from edge.erasure import erase_customer
from edge.forwarder import DeliveryError, Forwarder
from edge.node import EdgeNode
from edge.panel import create_app
from edge.panel.users import create_user
from edge.sync import SyncClient
from tests.central.conftest import Central, make_central

from .conftest import GTIN, GTIN_2, query, wait_until
from .panel_fixtures import STAFF, csrf_token, login
from .store_harness import STORE, StoreHarness

KIOSK = "kiosk-01"
#: Nothing listens here: the store's link to central is down.
DEAD = "http://127.0.0.1:9"


def kiosk_order(h: StoreHarness, client_id: str) -> dict[str, Any]:
    session = h.identify(KIOSK, "C7")
    placed = h.ask(KIOSK, "order_place", {
        "client_order_id": client_id, "session_id": session,
        "lines": [{"gtin": GTIN, "quantity": 1}], "fulfilment": {"type": "click_and_collect"}})
    paid = h.ask(KIOSK, "order_pay", {"order_id": placed["order_id"], "outcome": "approved",
                                      "payment_ref": f"pay-{client_id}"})
    assert paid["status"] == "paid"
    return placed


def web_order(order_id: str, store: str) -> dict[str, Any]:
    return {"order_id": order_id, "channel": "web", "customer_id": "C8",
            "created_at": time.time(),
            "fulfilment": {"type": "click_and_collect", "store_id": store},
            "lines": [{"gtin": GTIN_2, "quantity": 2, "unit_price_cents": 2999}]}


def clerk(db: Path) -> Any:
    create_user(db, *STAFF, "staff")
    app = create_app({"TESTING": True, "DB_PATH": str(db), "SECRET_KEY": "t"})
    client = app.test_client()
    login(client, STAFF)
    return client


def drain(fwd: Forwarder, db: Path) -> None:
    for _ in range(20):
        fwd.drain_once()
        if not query(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0]:
            return
    raise AssertionError("the outbox did not drain")


def history(central: Central, order_id: str) -> list[tuple[str, str, str | None]]:
    status, body = central.api("GET", f"/api/v1/orders/{order_id}")
    assert status == 200, body
    return [(h["status"], h["changed_by"], h["actor"]) for h in body["history"]]


def edge_status(db: Path, order_id: str) -> str:
    return query(db, "SELECT status FROM kiosk_orders WHERE order_id = ?", order_id)[0][0]


def test_orders_go_both_ways_and_an_offline_edge_catches_up(central: Central, tmp_path) -> None:
    token = issue(central.db, "store", STORE)
    web = issue(central.db, "channel", "web")
    h = StoreHarness(tmp_path)
    db = h.cfg.db_path
    forwarders: list[Forwarder] = []
    syncs: list[SyncClient] = []

    def link(url: str) -> tuple[Forwarder, SyncClient]:
        fwd = Forwarder(db, url, token, backoff_cap_s=1.0, timeout_s=5)
        sync = SyncClient(str(db), url, token, store_id=STORE, timeout_s=5)
        forwarders.append(fwd)
        syncs.append(sync)
        return fwd, sync

    try:
        placed = kiosk_order(h, "c1")
        oid = placed["order_id"]
        # Central takes a web order for pickup here, and one for another store.
        assert central.api("POST", "/api/v1/orders", web_order("web-1", STORE), web)[0] == 201
        status, _ = central.api("POST", "/api/v1/orders/web-1/status",
                                {"status": "paid", "change_id": "web-pay-1"}, web)
        assert status == 201
        assert central.api("POST", "/api/v1/orders", web_order("web-z", "store-z"), web)[0] == 201

        # Offline: the store keeps working, nothing leaves, nothing is lost.
        fwd, sync = link(DEAD)
        with pytest.raises(DeliveryError):
            fwd.drain_once()
        with pytest.raises(SyncError):
            sync.sync_once("orders")
        c = clerk(db)
        tok = csrf_token(c, "/pickups/")
        assert c.post(f"/pickups/{oid}/advance", data={"csrf_token": tok, "from": "paid"}
                      ).status_code == 302
        assert query(db, "SELECT kind FROM outbox WHERE sent_at IS NULL AND kind LIKE 'order%'"
                         " ORDER BY seq") == [
            ("order",), ("order_status",), ("order_status",)]
        assert query(db, "SELECT count(*) FROM kiosk_orders")[0][0] == 1
        # Erasing the customer meanwhile keeps the order and its changes (accounting).
        with closing(sqlite3.connect(db, isolation_level=None, timeout=30)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            erase_customer(conn, "C7")
            conn.execute("COMMIT")
        assert query(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND kind LIKE "
                         "'order%'")[0][0] == 3

        # Back online: the store's changes reach central, in order, with who made them.
        fwd, sync = link(central.url)
        drain(fwd, db)
        assert history(central, oid) == [
            ("placed", f"store:{STORE}", None), ("paid", f"store:{STORE}", KIOSK),
            ("preparing", f"store:{STORE}", STAFF[0])]
        # ...and central's reach the store: the web order, not the other store's.
        sync.sync_once("orders")
        rows = dict(query(db, "SELECT order_id, status FROM kiosk_orders"))
        assert rows == {oid: "preparing", "web-1": "paid"}
        _, web_1 = central.api("GET", "/api/v1/orders/web-1", token=web)
        assert query(db, "SELECT channel, pickup_code FROM kiosk_orders WHERE order_id = "
                         "'web-1'") == [("web", web_1["pickup_code"])]
        html = c.get("/pickups/").get_data(as_text=True)
        assert f'data-order="{oid}"' in html and 'data-channel="kiosk"' in html
        assert 'data-order="web-1"' in html and 'data-channel="web"' in html
        assert "Kettle" in html  # the web order's lines named from the store's catalogue

        # A change made in central reaches the edge, and the kiosk's status request.
        status, _ = central.api("POST", f"/api/v1/orders/{oid}/status",
                                {"status": "ready", "change_id": "desk-ready", "actor": "desk"})
        assert status == 201
        sync.sync_once("orders")
        assert edge_status(db, oid) == "ready"
        assert h.ask(KIOSK, "order_status", {"order_id": oid})["status"] == "ready"
        assert query(db, "SELECT origin, changed_by FROM order_history WHERE order_id = ? "
                         "AND status = 'ready'", oid) == [("central", "admin:admin")]
        # The web order moves on at the store, and is collected with central's code.
        for frm in ("paid", "preparing"):
            assert c.post("/pickups/web-1/advance", data={"csrf_token": tok, "from": frm}
                          ).status_code == 302
        r = c.post("/pickups/collect", data={"csrf_token": tok, "order_id": "web-1",
                                             "pickup_code": web_1["pickup_code"]})
        assert r.status_code == 200 and 'id="collected"' in r.get_data(as_text=True)
        drain(fwd, db)
        assert [s for s, _, _ in history(central, "web-1")] == [
            "placed", "paid", "preparing", "ready", "collected"]
        assert central.api("GET", "/api/v1/orders/web-1", token=web)[1]["status"] == "collected"

        # Replays change nothing: the whole feed again, every outbox row sent again.
        before_edge = query(db, "SELECT order_id, status FROM kiosk_orders ORDER BY 1")
        before_hist = query(db, "SELECT count(*) FROM order_history")
        before_central = central.count("SELECT COUNT(*) AS n FROM order_changes")
        with closing(sqlite3.connect(db, isolation_level=None, timeout=30)) as conn:
            conn.execute("UPDATE sync_state SET version = 0 WHERE feed = 'orders'")
            conn.execute("UPDATE outbox SET sent_at = NULL WHERE kind LIKE 'order%'")
        sync.sync_once("orders")
        drain(fwd, db)
        assert query(db, "SELECT order_id, status FROM kiosk_orders ORDER BY 1") == before_edge
        assert query(db, "SELECT count(*) FROM order_history") == before_hist
        assert central.count("SELECT COUNT(*) AS n FROM order_changes") == before_central
        assert fwd.counters["rejected_total"] == 0
    finally:
        for f in forwarders:
            f.close()
        for s in syncs:
            s.stop()
        h.close()


def test_a_move_central_refuses_is_a_dead_letter_and_centrals_status_wins(
        central: Central, tmp_path) -> None:
    token = issue(central.db, "store", STORE)
    h = StoreHarness(tmp_path)
    db = h.cfg.db_path
    fwd = Forwarder(db, central.url, token, backoff_cap_s=1.0, timeout_s=5)
    sync = SyncClient(str(db), central.url, token, store_id=STORE, timeout_s=5)
    try:
        oid = kiosk_order(h, "c2")["order_id"]
        drain(fwd, db)
        # Central cancels while the store, not knowing yet, starts preparing it.
        status, _ = central.api("POST", f"/api/v1/orders/{oid}/status",
                                {"status": "cancelled", "change_id": "desk-cancel"})
        assert status == 201
        c = clerk(db)
        tok = csrf_token(c, "/pickups/")
        assert c.post(f"/pickups/{oid}/advance", data={"csrf_token": tok, "from": "paid"}
                      ).status_code == 302
        drain(fwd, db)
        [(error,)] = query(db, "SELECT last_error FROM outbox WHERE kind = 'order_status' "
                               "AND json_extract(payload, '$.status') = 'preparing'")
        assert error.startswith("rejected:") and "cancelled" in error
        assert fwd.counters["rejected_total"] == 1
        sync.sync_once("orders")
        assert edge_status(db, oid) == "cancelled"
        assert h.ask(KIOSK, "order_status", {"order_id": oid})["status"] == "cancelled"
        assert oid not in c.get("/pickups/").get_data(as_text=True)
        assert central.api("GET", f"/api/v1/orders/{oid}")[1]["status"] == "cancelled"
    finally:
        fwd.close()
        sync.stop()
        h.close()


def test_an_online_edge_gets_a_web_order_within_seconds_by_the_nudge(
        broker, edge_config, tmp_path: Path) -> None:
    broker.add_many([("sync-bridge", "edge")])
    store = broker.store_id
    central = make_central({"sqlite_path": str(tmp_path / "central.db")})
    token = issue(central.db, "store", store)
    web = issue(central.db, "channel", "web")
    # The pull alone would come only after 5 minutes: whatever is faster is the nudge.
    cfg = dataclasses.replace(edge_config, central_url=central.url, store_token=token,
                              sync_orders_s=300.0)
    node = EdgeNode(cfg).start()
    publisher = StockPublisher(BrokerTarget("127.0.0.1", broker.port, "sync-bridge",
                                            "sync-bridge-pw"), sync_stock_topic(store))
    topic = sync_orders_topic(store)
    bridge = OrderBridge(central.db, store, lambda p: publisher.publish(p, topic),
                         interval_s=0.1)
    thread = threading.Thread(target=bridge.run, daemon=True)
    try:
        assert publisher.connected.wait(10) and node.sync.push_ready.wait(10)
        # The start-up pull is done (succeeded): the next one is 5 minutes away.
        wait_until(lambda: query(cfg.db_path, "SELECT count(*) FROM sync_state WHERE feed = "
                                              "'orders' AND last_success_at IS NOT NULL")[0][0],
                   timeout=10)
        thread.start()
        started = time.monotonic()
        assert central.api("POST", "/api/v1/orders", web_order("web-9", store), web)[0] == 201
        wait_until(lambda: query(cfg.db_path, "SELECT status FROM kiosk_orders WHERE "
                                              "order_id = 'web-9'"), timeout=10)
        elapsed = time.monotonic() - started
        assert elapsed < 10.0
        assert node.sync.metrics()["order_pushes_total"] >= 1
        assert bridge.counters["messages_total"] >= 1
        print(f"web order at the online edge {elapsed:.2f} s after it was placed")
    finally:
        bridge.stop()
        thread.join(5)
        publisher.close()
        node.stop()
        for s in central.servers:
            s.stop()
        central.db.close()


VALID_CHANGE = {"seq": 1, "order_id": "web-1", "previous": None, "status": "placed",
                "changed_by": "channel:web", "actor": None, "occurred_at": 1.0,
                "recorded_at": 1.0, "channel": "web", "pickup_code": "123456",
                "order": {"order_id": "web-1", "channel": "web", "customer_id": "C8",
                          "created_at": 1.0, "lines": [{"gtin": GTIN_2, "quantity": 1}],
                          "fulfilment": {"type": "click_and_collect", "store_id": STORE}}}
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c,
                                                                          max_size=3),
                     max_leaves=6)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(VALID_CHANGE)), _json,
       st.sampled_from(["", "order_id", "lines", "created_at", "currency", "total_cents"]),
       _json)
def test_a_change_not_in_the_documented_shape_is_refused_whole(
        tmp_path_factory, key: str, value: Any, order_key: str, order_value: Any) -> None:
    """Whatever central's feed holds, the edge applies it or refuses it with ValueError
    (the pull fails, the cursor stays), never another exception; a refusal writes nothing."""
    h = _feed_db(tmp_path_factory)
    change = {**VALID_CHANGE, key: value, "order": dict(VALID_CHANGE["order"])}
    if order_key and isinstance(change["order"], dict):
        change["order"][order_key] = order_value
    conn = h.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        applied = order_feed.apply(conn, [change], 2.0)
        # Taken: the order is there, in the status the change says.
        assert [a["order_id"] for a in applied] == [change["order_id"]]
        assert conn.execute("SELECT status FROM kiosk_orders WHERE order_id = ?",
                            (change["order_id"],)).fetchone()[0] == change["status"]
    except ValueError as exc:
        assert "order change" in str(exc)
    except sqlite3.Error:
        pass  # a value SQLite cannot bind: the sync client's tick treats it as a failed pull
    finally:
        conn.execute("ROLLBACK")


_FEED_DB: dict[str, StoreHarness] = {}


def _feed_db(tmp_path_factory) -> StoreHarness:
    """One migrated edge database for all the examples (each rolls back)."""
    if "h" not in _FEED_DB:
        _FEED_DB["h"] = StoreHarness(tmp_path_factory.mktemp("feed"))
    return _FEED_DB["h"]
