"""Forwarder against a real central over HTTP: outages, SIGKILL, dead letters, retention."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from central.credentials import issue
from central.interests import decay
from central.server import ServerThread
from edge.db import connect, migrate
from edge.forwarder import Forwarder
from tests.central.conftest import STORE, Central, interest, make_central, presence
from tests.central.pg import shared_cluster
from vitrine.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
NS = uuid.UUID("6f0b3f2a-0000-4000-8000-000000000001")



def make_outbox(path: Path) -> sqlite_utils.Database:
    """The outbox exactly as the edge creates it: its own migrations."""
    db = connect(path)
    migrate(db)
    return db


def add(db: sqlite_utils.Database, events: list[dict[str, Any]], kind: str | None = None,
        created_at: float | None = None) -> None:
    rows = [{"event_id": e.get("event_id") or e["order_id"], "kind": kind or e["type"],
             "customer_key": e.get("customer_id") or e.get("session_id") or "-",
             "payload": json.dumps(e), "created_at": created_at or time.time()}
            for e in events]
    db["outbox"].insert_all(rows, batch_size=1000)


def burst(n: int, customers: int, t0: float) -> list[dict[str, Any]]:
    """``n`` events: each customer is identified (presence) then taps products."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        c = i % customers
        eid = str(uuid.uuid5(NS, f"burst-{i}"))
        if i < customers:
            out.append(presence(f"cust-{c}", f"sess-{c}", at=t0 + i * 0.001, event_id=eid))
        else:
            gtin = f"{(i % 7) + 1:014d}"
            out.append(interest(f"sess-{c}", gtin=gtin, at=t0 + i * 0.001, event_id=eid))
    return out


def grant_all(central: Central, customers: int) -> None:
    def apply(tx: Any) -> None:
        from central.consent import set_consent

        for c in range(customers):
            set_consent(tx, f"cust-{c}", "tracking", True, "test", time.time() - 3600)

    central.db.run(apply)


def wait_for(pred: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def unsent(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]


def assert_exactly_once(central: Central, events: list[dict[str, Any]], customers: int) -> None:
    ids = {e["event_id"] for e in events}
    stored = central.db.run(lambda tx: tx.all("SELECT event_id FROM events"), write=False)
    stored_ids = [r["event_id"] for r in stored]
    assert len(stored_ids) == len(set(stored_ids)) == len(ids)
    assert set(stored_ids) == ids
    # ...and every profile counts each of its taps once: each product's score is the sum of
    # its taps' decayed weights (~1 each), so one tap counted twice is off by ~1, while the
    # clock moving during the read shifts a score by < 1e-4.
    half_life = central.app.config["CENTRAL"].interest_half_life_days
    for c in (0, customers // 2, customers - 1):
        now = time.time()
        profile = central.profile(f"cust-{c}")
        expected: dict[str, float] = {}
        for e in events:
            if e["type"] == "interest" and e["session_id"] == f"sess-{c}":
                expected[e["gtin"]] = expected.get(e["gtin"], 0.0) + decay(now - e["received_at"],
                                                                          half_life)
        got = {p["gtin"]: p["score"] for p in profile["interests"]["products"]}
        assert got.keys() == expected.keys()
        for gtin, score in got.items():
            assert abs(score - expected[gtin]) < 0.01, (c, gtin, score, expected[gtin])


def _run_in_thread(fwd: Forwarder) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=fwd.run, args=(stop, 0.02), name="forwarder")
    thread.start()
    return stop, thread


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_central_down_during_burst_then_up_exactly_once(tmp_path: Path, engine: str) -> None:
    port = free_port()
    outbox = make_outbox(tmp_path / "edge.db")
    fwd = Forwarder(tmp_path / "edge.db", f"http://127.0.0.1:{port}", "pending", 500,
                    backoff_base_s=0.02, backoff_cap_s=0.2)
    stop, thread = _run_in_thread(fwd)
    events = burst(10_000, 100, time.time() - 3600)
    try:
        # The edge writes the burst through its own connection while central is down.
        for start in range(0, len(events), 1000):
            add(outbox, events[start:start + 1000])
        wait_for(lambda: fwd.failures >= 3, what="failed attempts while central is down")
        m = fwd.metrics()
        assert m["backlog"] == 10_000 and m["oldest_unsent_age_s"] > 0
        db_config = ({"database_url": shared_cluster().create_schema(f"fw_{uuid.uuid4().hex[:8]}")}
                     if engine == "postgres" else {"sqlite_path": str(tmp_path / "central.db")})
        app_central = make_central(db_config)
        grant_all(app_central, 100)
        fwd.store_token = app_central.store_token
        late = ServerThread(app_central.app, port=port).start()
        try:
            wait_for(lambda: unsent(tmp_path / "edge.db") == 0, 60, "the backlog to drain")
            assert_exactly_once(app_central, events, 100)
            assert fwd.metrics()["backlog"] == 0 and fwd.metrics()["oldest_unsent_age_s"] == 0
            assert fwd.counters["sent_total"] == 10_000
            with sqlite3.connect(tmp_path / "edge.db") as conn:
                errors = conn.execute("SELECT COUNT(*) FROM outbox WHERE last_error IS NOT NULL"
                                      ).fetchone()[0]
                retried = conn.execute("SELECT MAX(attempts) FROM outbox").fetchone()[0]
            assert errors == 0 and retried >= 2
        finally:
            late.stop()
            for s in app_central.servers:
                s.stop()
            app_central.db.close()
    finally:
        stop.set()
        thread.join(10)
        fwd.close()


def _spawn(db: Path, url: str, token: str) -> subprocess.Popen:
    env = {**os.environ, "VITRINE_STORE_TOKEN": token, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "edge.forwarder", "--db", str(db),
                             "--central", url, "--batch-size", "250", "--backoff-cap", "0.2"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_forwarder_sigkilled_mid_drain_then_restarted_exactly_once(
        tmp_path: Path, central: Central) -> None:
    db = tmp_path / "edge.db"
    outbox = make_outbox(db)
    events = burst(10_000, 50, time.time() - 3600)
    add(outbox, events)
    grant_all(central, 50)
    proc = _spawn(db, central.url, central.store_token)
    try:
        wait_for(lambda: central.count("SELECT COUNT(*) AS n FROM events") >= 2_000, 30,
                 "the first batches")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        left = unsent(db)
        assert 0 < left < 10_000, "killed mid-drain"
        proc = _spawn(db, central.url, central.store_token)
        wait_for(lambda: unsent(db) == 0, 60, "the restarted forwarder to drain")
    finally:
        proc.terminate()
        proc.wait(10)
    assert_exactly_once(central, events, 50)


@pytest.mark.allow_errors
def test_rejected_events_and_refused_orders_are_dead_letters_unsent_orders_never_dropped(
        tmp_path: Path, central: Central, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "edge.db"
    outbox = make_outbox(db)
    good = interest("s1")
    bad = interest("s1", gtin="12")
    order_ok = {"order_id": "o-1", "channel": "kiosk", "created_at": time.time(),
                "fulfilment": {"type": "click_and_collect", "store_id": STORE},
                "lines": [{"gtin": "00000000000017", "quantity": 1}]}
    order_bad = {**order_ok, "order_id": "o-2", "lines": []}
    add(outbox, [bad, good])
    add(outbox, [order_bad, order_ok], kind="order")
    fwd = Forwarder(db, central.url, central.store_token)
    assert fwd.drain_once() == 3
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT event_id, last_error FROM outbox WHERE sent_at "
                                 "IS NOT NULL").fetchall())
        left = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
    assert rows[good["event_id"]] is None and rows["o-1"] is None
    assert rows[bad["event_id"]].startswith("rejected:") and "gtin" in rows[bad["event_id"]]
    # A 400 cannot be fixed by sending it again: a dead letter with central's reason,
    # logged once, never retried.
    assert rows["o-2"].startswith("rejected: HTTP 400") and "lines" in rows["o-2"]
    assert left == (0,)
    assert fwd.counters["rejected_total"] == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "o-2" in r.getMessage()]
    assert len(errors) == 1
    caplog.clear()
    assert fwd.drain_once() == 0 and not caplog.records
    # Retention never touches an unsent order, however old.
    add(outbox, [{**order_ok, "order_id": "o-3"}], kind="order")
    fwd.clock = lambda: time.time() + 365 * 86_400
    fwd.housekeeping()
    assert [r[0] for r in sqlite3.connect(db).execute("SELECT event_id FROM outbox")] == ["o-3"]
    status, feed = central.api("GET", f"/api/v1/stores/{STORE}/orders")
    assert [o["order_id"] for o in feed["orders"]] == ["o-1"]
    fwd.close()


def test_retention_expires_only_old_unsent_tracking_events(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "edge.db"
    outbox = make_outbox(db)
    now = time.time()
    old = now - 40 * 86_400
    add(outbox, [interest("s1"), presence("c1", "s1")], created_at=old)
    add(outbox, [{"event_id": "sec-1", "type": "security", "store_id": STORE,
                  "device_id": "d", "reason": "forged", "received_at": old}], created_at=old)
    add(outbox, [interest("s2")], created_at=now)
    fwd = Forwarder(db, "http://127.0.0.1:9", "t")
    m = fwd.metrics()
    assert m["backlog"] == 4 and m["oldest_unsent_age_s"] >= 40 * 86_400 - 5
    with caplog.at_level(logging.CRITICAL, "vitrine.forwarder"):
        fwd.housekeeping()
    kinds = sorted(r[0] for r in sqlite3.connect(db).execute("SELECT kind FROM outbox"))
    assert kinds == ["interest", "security"]
    assert fwd.counters["expired_total"] == 2
    assert any("expired 2" in r.getMessage() for r in caplog.records)
    fwd.close()


def test_disk_budget_alarm_and_opt_in_shedding(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "edge.db"
    outbox = make_outbox(db)
    add(outbox, [interest(f"s{i}") for i in range(3000)])
    add(outbox, [{"order_id": f"o-{i}", "channel": "kiosk"} for i in range(5)], kind="order")
    # shed_min_age_s=0: these rows are seconds old, which the default (1 h) never sheds.
    fwd = Forwarder(db, "http://127.0.0.1:9", "t", disk_budget_bytes=200_000,
                    shed_min_age_s=0)
    with caplog.at_level(logging.CRITICAL, "vitrine.forwarder"):
        fwd.housekeeping()
        assert fwd.metrics()["over_budget"]
        assert any("OVER DISK BUDGET" in r.getMessage() for r in caplog.records)
        assert fwd.metrics()["backlog"] == 3005  # alarm only: nothing lost by default
        fwd.shed_tracking_over_budget = True
        fwd._last_alarm = float("-inf")
        fwd.housekeeping()
    m = fwd.metrics()
    assert m["unsent_orders"] == 5 and m["shed_total"] > 0
    assert m["backlog"] == 3005 - m["shed_total"]
    assert m["disk_bytes"] <= 200_000 or m["backlog"] == 5
    fwd.close()


def test_backoff_is_exponential_with_full_jitter_and_capped(tmp_path: Path) -> None:
    make_outbox(tmp_path / "edge.db")
    fwd = Forwarder(tmp_path / "edge.db", "http://127.0.0.1:9", "t", backoff_base_s=0.5,
                    backoff_cap_s=8)
    ceilings = []
    for failures in range(8):
        fwd.failures = failures
        samples = [fwd.backoff_delay() for _ in range(300)]
        assert min(samples) >= 0
        ceilings.append(max(samples))
    assert ceilings[0] <= 0.5 and ceilings[3] > 2.0 and max(ceilings) <= 8
    assert len({round(d, 6) for d in samples}) > 250  # jittered, not in lockstep
    fwd.close()


def test_revoked_token_keeps_events_queued(tmp_path: Path, central: Central) -> None:
    db = tmp_path / "edge.db"
    add(make_outbox(db), [interest("s1")])
    token = issue(central.db, "store", STORE)  # replaces the old credential
    fwd = Forwarder(db, central.url, central.store_token)
    with pytest.raises(Exception, match="401"):
        fwd.drain_once()
    assert unsent(db) == 1
    fwd.store_token = token
    assert fwd.drain_once() == 1 and unsent(db) == 0
    fwd.close()


def test_lanes_preserve_each_customers_order(tmp_path: Path) -> None:
    """With several lanes in flight, each customer's events still arrive in seq order."""
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    arrivals: list[str] = []
    lock = threading.Lock()

    @Request.application
    def fake_central(request: Request) -> Response:
        events = json.loads(request.get_data())["events"]
        time.sleep(0.001 * (len(arrivals) % 5))  # lanes finish in varying order
        with lock:
            arrivals.extend(e["event_id"] for e in events)
        return Response(json.dumps({"accepted": [e["event_id"] for e in events],
                                    "duplicate": [], "rejected": []}),
                        content_type="application/json")

    server = make_server("127.0.0.1", 0, fake_central, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    db = tmp_path / "edge.db"
    events = [interest(f"sess-{i % 30}", event_id=f"e{i:05d}") for i in range(2000)]
    add(make_outbox(db), events)
    fwd = Forwarder(db, f"http://127.0.0.1:{server.port}", "t", batch_size=50, lanes=4)
    try:
        while fwd.drain_once():
            pass
    finally:
        fwd.close()
        server.shutdown()
        thread.join(5)
    assert sorted(arrivals) == [e["event_id"] for e in events]
    assert arrivals != sorted(arrivals), "lanes should interleave customers"
    by_customer: dict[str, list[str]] = {}
    session_of = {e["event_id"]: e["session_id"] for e in events}
    for eid in arrivals:
        by_customer.setdefault(session_of[eid], []).append(eid)
    assert all(ids == sorted(ids) for ids in by_customer.values())
