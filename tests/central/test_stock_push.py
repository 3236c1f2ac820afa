"""Real-time stock push: central's bridge -> real Mosquitto -> a real edge SyncClient."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central import create_app
from central.credentials import issue
from central.db import Database
from central.feeds.api import load
from central.stock_push import (
    BrokerTarget,
    PushError,
    StockBridge,
    StockPublisher,
    load_cursor,
)
from contract.stock_push import parse_stock_message, sync_stock_topic
from edge.db import connect, migrate
from edge.sync import MqttSettings, SyncClient
from tests.central.conftest import make_central
from tests.edge.conftest import make_client, wait_until

GTINS = [f"{n:014d}" for n in range(1, 51)]
YEAR_S = 365 * 86_400.0
ROOT = Path(__file__).resolve().parents[2]


def put_stock(db: Database, location: str, gtin: str, quantity: int, at: float) -> int:
    return load(db, "stock", {"items": [{"location": location, "gtin": gtin,
                                         "quantity": quantity, "observed_at": at}]})


def edge_stock(db_path: Path) -> dict[tuple[str, str], int]:
    conn = sqlite3.connect(db_path)
    try:
        return {(r[0], r[1]): r[2] for r in conn.execute(
            "SELECT location, gtin, quantity FROM sync_stock")}
    finally:
        conn.close()


class Spy:
    """Every push message seen on the store broker (an extra subscriber of role ``edge``)."""

    def __init__(self, broker: Any) -> None:
        self.messages: list[list[dict[str, Any]]] = []
        self.client = make_client(broker.port, "spy", "spy-pw")
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append(
            parse_stock_message(m.payload))
        self.client.subscribe(sync_stock_topic(broker.store_id), qos=1)
        assert subscribed.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def central_db(backend: dict[str, Any]) -> Iterator[Database]:
    app = create_app(backend)
    try:
        yield app.extensions["central_db"]
    finally:
        app.extensions["central_db"].close()


# -- cursor semantics, on SQLite and PostgreSQL (no broker needed) -------------------------------

def test_first_start_begins_at_current_version_then_pages(central_db: Database) -> None:
    now = time.time()
    for g in GTINS[:3]:
        put_stock(central_db, "store-x", g, 5, now)
    sent: list[bytes] = []
    bridge = StockBridge(central_db, "store-x", sent.append, page_size=2)
    assert bridge.push_once() == 0 and sent == []  # the pull already has those
    for i, g in enumerate(GTINS[:5]):
        put_stock(central_db, "store-y" if i % 2 else "store-x", g, i, now + 1)
    assert bridge.push_once() == 5
    assert [len(parse_stock_message(m)) for m in sent] == [2, 2, 1]
    assert load_cursor(central_db, "store-x") == 8 == bridge.cursor
    assert bridge.push_once() == 0 and len(sent) == 3


def test_a_refused_publish_keeps_the_cursor(central_db: Database) -> None:
    sent: list[bytes] = []
    fail = {"on": 2}

    def publish(payload: bytes) -> None:
        if len(sent) + 1 == fail["on"]:
            raise PushError("broker gone")
        sent.append(payload)

    bridge = StockBridge(central_db, "store-x", publish, page_size=2)
    now = time.time()
    for g in GTINS[:4]:
        put_stock(central_db, "store-x", g, 1, now)
    with pytest.raises(PushError):
        bridge.push_once()
    assert load_cursor(central_db, "store-x") == 2  # only the acknowledged page
    fail["on"] = 0
    restarted = StockBridge(central_db, "store-x", publish, page_size=2)
    assert restarted.push_once() == 2
    pushed = [i["gtin"] for m in sent for i in parse_stock_message(m)]
    assert pushed == GTINS[:4]


def test_a_restored_central_does_not_flood_the_store(central_db: Database) -> None:
    sent: list[bytes] = []
    put_stock(central_db, "store-x", GTINS[0], 1, time.time())
    bridge = StockBridge(central_db, "store-x", sent.append)
    central_db.run(lambda tx: tx.execute(
        "UPDATE stock_push_cursors SET version = 99 WHERE store_id = 'store-x'"))
    bridge.cursor = 99  # as if central's database came back from an older backup
    assert bridge.push_once() == 0 and sent == []
    assert bridge.cursor == 1 == load_cursor(central_db, "store-x")


# -- end to end over the real broker and a real edge ---------------------------------------------

@pytest.fixture
def pushing_edge(broker: Any, tmp_path: Path, backend: dict[str, Any]
                 ) -> Iterator[dict[str, Any]]:
    """Central (SQLite or PostgreSQL, HTTP), an edge SyncClient subscribed to the push,
    pulls a year apart."""
    central = make_central(backend)
    store = broker.store_id
    now = time.time()
    load(central.db, "stock", {"items": [{"location": store, "gtin": g, "quantity": 10,
                                          "observed_at": now - 60} for g in GTINS]})
    db_path = tmp_path / "edge.db"
    edb = connect(db_path)
    migrate(edb)
    edb.conn.close()
    sync = SyncClient(str(db_path), central.url, issue(central.db, "store", store),
                      {"catalogue": 0, "prices": 0, "stock": YEAR_S, "erasures": 0},
                      store_id=store, mqtt=MqttSettings("127.0.0.1", broker.port, "edge",
                                                        "edge-pw"))
    try:
        sync.start()
        assert sync.push_ready.wait(5)
        # The one pull of the year: the baseline copy, before the bridge starts.
        wait_until(lambda: sync.metrics()["feeds"]["stock"]["version"] == 50, timeout=10)
        yield {"central": central, "sync": sync, "db_path": db_path, "store": store}
    finally:
        sync.stop()
        for s in central.servers:
            s.stop()
        central.db.close()


def test_stock_change_reaches_the_edge_by_push(broker: Any, pushing_edge: dict[str, Any]
                                               ) -> None:
    central, sync, db_path, store = (pushing_edge[k] for k in ("central", "sync", "db_path",
                                                               "store"))
    broker.add("sync-bridge", "edge")
    publisher = StockPublisher(BrokerTarget("127.0.0.1", broker.port, "sync-bridge",
                                            "sync-bridge-pw"), sync_stock_topic(store))
    bridge = StockBridge(central.db, store, publisher.publish, interval_s=0.05)
    thread = threading.Thread(target=bridge.run, name="stock-push", daemon=True)
    try:
        assert publisher.connected.wait(5)
        thread.start()
        started = time.monotonic()
        put_stock(central.db, store, GTINS[0], 3, time.time())
        put_stock(central.db, "web-warehouse", GTINS[1], 40, time.time())
        wait_until(lambda: edge_stock(db_path).get((store, GTINS[0])) == 3
                   and edge_stock(db_path).get(("web-warehouse", GTINS[1])) == 40, timeout=5)
        assert time.monotonic() - started < 5
        m = sync.metrics()
        assert m["pushes_total"] >= 1 and m["pushes_rejected_total"] == 0
        assert m["feeds"]["stock"]["version"] == 50  # the pull cursor did not move: a push
        assert sync.stock_view(GTINS[0])["this_store"]["quantity"] == 3
        assert bridge.counters["failures_total"] == 0
    finally:
        bridge.stop()
        thread.join(5)
        publisher.close()


def test_broker_refusal_is_an_error_not_progress(broker: Any, backend: dict[str, Any]) -> None:
    """A bridge provisioned with a device role is refused by the ACL: the cursor stays."""
    app = create_app(backend)
    db = app.extensions["central_db"]
    broker.add("not-a-bridge", "nfc_reader")
    publisher = StockPublisher(BrokerTarget("127.0.0.1", broker.port, "not-a-bridge",
                                            "not-a-bridge-pw"), sync_stock_topic(broker.store_id))
    try:
        assert publisher.connected.wait(5)
        bridge = StockBridge(db, broker.store_id, publisher.publish)
        put_stock(db, broker.store_id, GTINS[0], 1, time.time())
        with pytest.raises(PushError, match="refused"):
            bridge.push_once()
        assert load_cursor(db, broker.store_id) == 0
    finally:
        publisher.close()
        db.close()


class BridgeProcess:
    """``python -m central.stock_push`` as a real process; stderr (its log) goes to a file."""

    def __init__(self, broker: Any, backend: dict[str, Any], log_path: Path) -> None:
        db_env = {f"VITRINE_CENTRAL_{k.upper()}": str(v) for k, v in backend.items()}
        env = {**os.environ, **db_env, "BRIDGE_PW": "sync-bridge-pw"}
        self.log = log_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "central.stock_push", "--store", broker.store_id,
             "--broker-host", "127.0.0.1", "--broker-port", str(broker.port),
             "--username", "sync-bridge", "--password-env", "BRIDGE_PW",
             "--interval-ms", "50"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()),  # type: ignore
                         daemon=True).start()
        # Printed once the cursor is initialised or loaded.
        line = lines.get(timeout=15)
        assert line.startswith("stock push for"), (line, log_path.read_text())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=15)
        assert self.proc.returncode == 0
        self.log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def test_bridge_process_restart_resumes_without_flooding(broker: Any, tmp_path: Path,
                                                         backend: dict[str, Any]) -> None:
    app = create_app(backend)
    db = app.extensions["central_db"]
    store = broker.store_id
    broker.add_many([("sync-bridge", "edge"), ("spy", "edge")])
    spy = Spy(broker)
    now = time.time()
    load(db, "stock", {"items": [{"location": store, "gtin": g, "quantity": 10,
                                  "observed_at": now - 60} for g in GTINS]})
    log_path = tmp_path / "bridge.log"
    proc = BridgeProcess(broker, backend, log_path)
    try:
        put_stock(db, store, GTINS[0], 1, now)
        wait_until(lambda: len(spy.messages) == 1, timeout=10)
        proc.stop()
        put_stock(db, store, GTINS[1], 2, now)  # while the bridge is down
        proc = BridgeProcess(broker, backend, log_path)
        wait_until(lambda: len(spy.messages) == 2, timeout=10)
        # A marker change: anything sent again in between would arrive before it.
        put_stock(db, store, GTINS[2], 3, now)
        wait_until(lambda: len(spy.messages) >= 3, timeout=10)
        proc.stop()
        assert [[(i["gtin"], i["quantity"]) for i in m] for m in spy.messages] == [
            [(GTINS[0], 1)], [(GTINS[1], 2)], [(GTINS[2], 3)]]
        assert load_cursor(db, store) == 53
    finally:
        proc.kill()
        spy.close()
        db.close()


def test_cli_refuses_a_missing_password_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_PW"}
    out = subprocess.run(
        [sys.executable, "-m", "central.stock_push", "--store", "store-1", "--broker-host",
         "127.0.0.1", "--username", "u", "--password-env", "NO_SUCH_PW"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "NO_SUCH_PW" in out.stderr
