"""Click & collect in another store, pay at pickup, cancel and refusals, with the real parts.

Store A's kiosk takes an order for collection in store B: A's edge (the real request
router, ``StoreHarness``) forwards it with the real forwarder, central (HTTP, SQLite and
PostgreSQL) routes it to B, B's edge pulls it with the real sync client and its panel
(Flask test client) prepares and hands it over; A's kiosk sees every status. Then what
central refuses for good (a dead letter with its reason, never an endless retry), and
the counter's own acts: payment taken at pickup, cancel.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from central.credentials import issue
from edge.db import connect, migrate
from edge.forwarder import Forwarder
from edge.sync import SyncClient
from tests.central.conftest import Central, grant, make_central

from .conftest import GTIN, GTIN_2, query
from .store_harness import STORE, StoreHarness
from .test_order_sync import KIOSK, clerk, drain, edge_status, history, web_order

OTHER = "store-b"


def order_for(h: StoreHarness, client_id: str, store: str, customer: str | None = "C7",
              pay: bool = True) -> dict[str, Any]:
    session = h.identify(KIOSK, customer) if customer else None
    placed = h.ask(KIOSK, "order_place", {
        "client_order_id": client_id, "session_id": session,
        "lines": [{"gtin": GTIN, "quantity": 1}],
        "fulfilment": {"type": "click_and_collect", "store_id": store}})
    if pay:
        assert h.ask(KIOSK, "order_pay", {"order_id": placed["order_id"],
                                          "outcome": "approved",
                                          "payment_ref": f"pay-{client_id}"})["status"] == "paid"
    return placed


def other_store(tmp_path: Path, central: Central) -> tuple[Path, SyncClient, Forwarder]:
    """Store B's edge: its own database, sync client and forwarder (no devices needed)."""
    db = tmp_path / "b" / "edge.db"
    migrate(connect(db))
    token = issue(central.db, "store", OTHER)
    return (db, SyncClient(str(db), central.url, token, store_id=OTHER, timeout_s=5),
            Forwarder(db, central.url, token, backoff_cap_s=1.0, timeout_s=5))


def test_an_order_taken_here_is_prepared_and_collected_in_another_store(
        central: Central, tmp_path: Path) -> None:
    a_token = issue(central.db, "store", STORE)
    h = StoreHarness(tmp_path / "a")
    a_db = h.cfg.db_path
    a_fwd = Forwarder(a_db, central.url, a_token, backoff_cap_s=1.0, timeout_s=5)
    a_sync = SyncClient(str(a_db), central.url, a_token, store_id=STORE, timeout_s=5)
    b_db, b_sync, b_fwd = other_store(tmp_path, central)
    try:
        placed = order_for(h, "x1", OTHER)
        oid, code = placed["order_id"], placed["pickup_code"]
        drain(a_fwd, a_db)
        assert a_fwd.counters["rejected_total"] == 0
        _, order = central.api("GET", f"/api/v1/orders/{oid}")
        assert (order["store_id"], order["taken_by"], order["pickup_code"]) == (OTHER, STORE,
                                                                                code)
        # Not in A's pickup queue, and A's counter cannot move it.
        a_clerk = clerk(a_db)
        assert oid not in a_clerk.get("/pickups/").get_data(as_text=True)
        tok = _csrf(a_clerk)
        assert a_clerk.post(f"/pickups/{oid}/advance", data={"csrf_token": tok, "from": "paid"}
                            ).status_code == 409
        assert a_clerk.post(f"/pickups/{oid}/cancel", data={"csrf_token": tok, "from": "paid"}
                            ).status_code == 409
        assert edge_status(a_db, oid) == "paid"

        # B pulls it, paid, and its queue shows who took it.
        b_sync.sync_once("orders")
        assert edge_status(b_db, oid) == "paid"
        b_clerk = clerk(b_db)
        html = b_clerk.get("/pickups/").get_data(as_text=True)
        assert f'data-order="{oid}"' in html and f"taken at store {STORE}" in html
        tok = _csrf(b_clerk)
        for frm in ("paid", "preparing"):
            assert b_clerk.post(f"/pickups/{oid}/advance",
                                data={"csrf_token": tok, "from": frm}).status_code == 302
        r = b_clerk.post("/pickups/collect", data={"csrf_token": tok, "code":
                                                   f"VITRINE-PICKUP:{oid}:{code}"})
        assert r.status_code == 200 and 'id="collected"' in r.get_data(as_text=True)
        drain(b_fwd, b_db)
        assert [(s, by) for s, by, _ in history(central, oid)] == [
            ("placed", f"store:{STORE}"), ("paid", f"store:{STORE}"),
            ("preparing", f"store:{OTHER}"), ("ready", f"store:{OTHER}"),
            ("collected", f"store:{OTHER}")]
        # A's kiosk follows it to the end.
        a_sync.sync_once("orders")
        assert h.ask(KIOSK, "order_status", {"order_id": oid})["status"] == "collected"
        # B's kiosks cannot read it as theirs (a kiosk of the same name in B).
        assert query(b_db, "SELECT device_id FROM kiosk_orders") == [(f"store:{STORE}",)]
        # A restored without it gets it back as its kiosk's, still not in A's queue.
        with closing(sqlite3.connect(a_db, isolation_level=None, timeout=30)) as conn:
            conn.execute("DELETE FROM kiosk_orders")
            conn.execute("DELETE FROM order_history")
            conn.execute("UPDATE sync_state SET version = 0 WHERE feed = 'orders'")
        a_sync.sync_once("orders")
        assert query(a_db, "SELECT device_id, status FROM kiosk_orders") == [
            (KIOSK, "collected")]
        assert h.ask(KIOSK, "order_status", {"order_id": oid})["status"] == "collected"
        assert oid not in a_clerk.get("/pickups/").get_data(as_text=True)
    finally:
        for link in (a_fwd, b_fwd):
            link.close()
        for s in (a_sync, b_sync):
            s.stop()
        h.close()


def _csrf(client: Any) -> str:
    from .panel_fixtures import csrf_token

    return csrf_token(client, "/pickups/")


@pytest.mark.allow_errors
def test_an_order_central_refuses_is_a_dead_letter_with_its_reason(
        backend: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Evidence gone stale: central keeps the customer's visit only within the window.
    central = make_central(backend, store_profile_window_days=0)
    h = StoreHarness(tmp_path)
    db = h.cfg.db_path
    fwd = Forwarder(db, central.url, issue(central.db, "store", STORE), backoff_cap_s=1.0,
                    timeout_s=5)
    try:
        grant(central, "C7", at=time.time() - 60)
        oid = order_for(h, "x2", OTHER)["order_id"]
        drain(fwd, db)  # no row left unsent: the order and its payment are dead letters
        rows = dict(query(db, "SELECT kind, last_error FROM outbox WHERE kind LIKE 'order%'"))
        assert rows["order"].startswith("rejected: HTTP 403")
        assert rows["order_status"] == "rejected: its order was refused by central"
        [(error,)] = query(db, "SELECT central_error FROM kiosk_orders WHERE order_id = ?", oid)
        assert error.startswith("order refused: HTTP 403") and "identified" in error
        assert fwd.metrics()["refused_orders"] == 1 and fwd.metrics()["unsent_orders"] == 0
        refusals = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(refusals) == 2  # once per row, not once per attempt
        fwd.drain_once()
        assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2
        # Visible to the manager: the operations page lists it, every page raises the alarm.
        from edge.panel import create_app
        from edge.panel.users import create_user

        from .panel_fixtures import MANAGER, login

        create_user(db, *MANAGER, "manager")
        app = create_app({"TESTING": True, "DB_PATH": str(db), "SECRET_KEY": "t"})
        m = app.test_client()
        login(m, MANAGER)
        html = m.get("/operations/").get_data(as_text=True)
        assert f'data-order="{oid}"' in html and "identified in this store" in html
        assert "1 order(s) refused by central" in m.get("/").get_data(as_text=True)
        # A manager settles it (refund, order taken again): the alarm ends, the reason stays.
        from .panel_fixtures import csrf_token

        tok = csrf_token(m, "/operations/")
        assert m.post(f"/operations/refused/{oid}/settle", data={"csrf_token": tok}
                      ).status_code == 302
        assert "refused by central" not in m.get("/").get_data(as_text=True)
        html = m.get("/operations/").get_data(as_text=True)
        assert f"settled by {MANAGER[0]}" in html and "identified in this store" in html
        assert fwd.metrics()["refused_orders"] == 0
        assert central.count("SELECT COUNT(*) AS n FROM orders") == 0
    finally:
        fwd.close()
        h.close()
        central.servers[0].stop()
        central.db.close()


def test_pay_at_pickup_and_cancel_at_the_counter(central: Central, tmp_path: Path) -> None:
    token = issue(central.db, "store", STORE)
    web = issue(central.db, "channel", "web")
    h = StoreHarness(tmp_path)
    db = h.cfg.db_path
    fwd = Forwarder(db, central.url, token, backoff_cap_s=1.0, timeout_s=5)
    sync = SyncClient(str(db), central.url, token, store_id=STORE, timeout_s=5)
    try:
        codes = {}
        for oid in ("pay-later", "drop-me"):
            status, body = central.api("POST", "/api/v1/orders", web_order(oid, STORE), web)
            assert status == 201
            codes[oid] = body["pickup_code"]
        # A kiosk order still being paid at the kiosk is not the counter's.
        unpaid = order_for(h, "x3", STORE, customer=None, pay=False)["order_id"]
        sync.sync_once("orders")
        # The web orders count in "tapped -> ordered", once however often the feed is read.
        daily = "SELECT gtin, sum(ordered), sum(orders) FROM product_daily WHERE ordered > 0 " \
                "GROUP BY gtin"
        assert query(db, daily) == [(GTIN_2, 4, 2)]
        with closing(sqlite3.connect(db, isolation_level=None, timeout=30)) as conn:
            conn.execute("UPDATE sync_state SET version = 0 WHERE feed = 'orders'")
        sync.sync_once("orders")
        assert query(db, daily) == [(GTIN_2, 4, 2)]
        c = clerk(db)
        html = c.get("/pickups/").get_data(as_text=True)
        assert html.count("pay at pickup") == 2 and unpaid not in html
        tok = _csrf(c)
        # Not paid: the code alone does not hand it over; with the payment taken it does,
        # every step of the lifecycle recorded.
        form = {"csrf_token": tok, "order_id": "pay-later", "pickup_code": codes["pay-later"]}
        r = c.post("/pickups/collect", data=form)
        assert r.status_code == 400 and "not paid yet" in r.get_data(as_text=True)
        assert edge_status(db, "pay-later") == "placed"
        r = c.post("/pickups/collect", data={**form, "take_payment": "1"})
        assert r.status_code == 200 and 'id="collected"' in r.get_data(as_text=True)
        # Cancel: from the state the clerk saw, and it leaves the queue.
        assert c.post("/pickups/drop-me/cancel", data={"csrf_token": tok, "from": "paid"}
                      ).status_code == 409
        assert c.post("/pickups/drop-me/cancel", data={"csrf_token": tok, "from": "placed"}
                      ).status_code == 302
        assert 'data-order="drop-me"' not in c.get("/pickups/").get_data(as_text=True)
        drain(fwd, db)
        assert [s for s, _, _ in history(central, "pay-later")] == [
            "placed", "paid", "preparing", "ready", "collected"]
        assert history(central, "drop-me")[-1] == ("cancelled", f"store:{STORE}", "clerk")
        assert fwd.counters["rejected_total"] == 0
    finally:
        fwd.close()
        sync.stop()
        h.close()
