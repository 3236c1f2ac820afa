"""Forwarder through a flapping network: every event in central exactly once, in order.

The forwarder talks to a real central (werkzeug HTTP server, SQLite or
PostgreSQL) through :class:`tests.netfault.FlappingProxy`, which every 1-2 s
cuts every connection (RST or FIN), refuses new ones for up to 0.6 s, and cuts
some replies part-way (in the status line, the headers or the body), so the
forwarder sees errors for batches central has committed and must resend them;
a few requests are cut part-way too, so central sees truncated bodies.
Meanwhile the edge keeps writing events to its outbox. Once the network
settles, every event must be in central exactly once, the outbox fully
acknowledged, and no customer's events may ever have been visible in central
out of the order the edge recorded them.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from central.consent import set_consent
from edge.db import connect, migrate
from edge.forwarder import Forwarder
from tests.central.conftest import Central, interest, presence
from tests.netfault import FlappingProxy

NS = uuid.UUID("6f0b3f2a-0000-4000-8000-00000000f1a9")
CUSTOMERS = 120  # identified: customer_key is the loyalty id
ANONYMOUS = 40  # never identified: customer_key is the session id
BACKLOG = 2_000  # in the outbox before the network starts flapping
LIVE = 6_000  # written by the edge while it flaps
FLAP_S = 12.0
SEED = 20240611


def make_events(n: int, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """``(customer_key, event)`` as the edge pipeline writes them, in outbox order.

    An identified customer's first event is its presence (loyalty tap), then
    its interests carry its customer id; anonymous sessions only tap products.
    """
    t0 = time.time() - 600
    started: set[str] = set()
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(n):
        eid = str(uuid.uuid5(NS, f"flap-{i}"))
        at = t0 + i * 0.01
        gtin = f"{rng.randint(1, 9):014d}"
        who = rng.randrange(CUSTOMERS + ANONYMOUS)
        if who >= CUSTOMERS:
            sess = f"anon-{who}"
            out.append((sess, interest(sess, gtin=gtin, at=at, event_id=eid)))
            continue
        cust, sess = f"cust-{who}", f"sess-{who}"
        if cust not in started:
            started.add(cust)
            out.append((cust, presence(cust, sess, at=at, event_id=eid)))
        else:
            out.append((cust, interest(sess, gtin=gtin, customer=cust, at=at, event_id=eid)))
    return out


def write_outbox(db: Any, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """One edge transaction, the way the pipeline's ``_emit`` writes the outbox."""
    db.conn.execute("BEGIN IMMEDIATE")
    db.conn.executemany(
        "INSERT INTO outbox (event_id, kind, customer_key, payload, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [(e["event_id"], e["type"], key, json.dumps(e), e["received_at"]) for key, e in rows])
    db.conn.execute("COMMIT")


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def count_duplicates(central: Central) -> Counter[str]:
    """Count the ids central answered as ``duplicate``: replays of batches it had stored."""
    seen: Counter[str] = Counter()
    inner = central.app.wsgi_app

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        body = b"".join(inner(environ, start_response))
        if environ.get("PATH_INFO") == "/api/v1/events" and body.startswith(b"{"):
            seen["duplicate"] += len(json.loads(body).get("duplicate", []))
        return [body]

    central.app.wsgi_app = middleware
    return seen


class OrderMonitor:
    """Polls central and checks each customer's visible events are a prefix of its sequence.

    A consistent snapshot (one ``SELECT``) in which a customer's later event is
    visible but an earlier one is not means central received them out of order.
    """

    def __init__(self, central: Central, events: list[tuple[str, dict[str, Any]]]) -> None:
        self.central = central
        self.position: dict[str, tuple[str, int]] = {}
        per_key: Counter[str] = Counter()
        for key, e in events:
            self.position[e["event_id"]] = (key, per_key[key])
            per_key[key] += 1
        self.polls = 0
        self.violations: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="order-monitor")

    def snapshot(self) -> list[str]:
        rows = self.central.db.run(lambda tx: tx.all("SELECT event_id FROM events"),
                                   write=False)
        return [r["event_id"] for r in rows]

    def check(self, ids: list[str]) -> None:
        count: Counter[str] = Counter()
        top: dict[str, int] = {}
        for eid in ids:
            key, index = self.position[eid]
            count[key] += 1
            top[key] = max(top.get(key, -1), index)
        bad = [k for k in count if top[k] != count[k] - 1]
        if bad:
            self.violations.append(f"poll {self.polls}: {bad[:5]} not a prefix")

    def _run(self) -> None:
        while not self.stop.wait(0.15):
            self.check(self.snapshot())
            self.polls += 1


def test_flapping_network_every_event_exactly_once_in_order(
        tmp_path: Path, central: Central) -> None:
    rng = random.Random(SEED)
    events = make_events(BACKLOG + LIVE, rng)
    consenting = [f"cust-{c}" for c in range(0, CUSTOMERS, 2)]

    def grant(tx: Any) -> None:
        for cust in consenting:
            set_consent(tx, cust, "tracking", True, "test", time.time() - 3600)

    central.db.run(grant)
    duplicates = count_duplicates(central)

    edge_path = tmp_path / "edge.db"
    edge = connect(edge_path)
    migrate(edge)
    write_outbox(edge, events[:BACKLOG])

    server = central.servers[0].server
    proxy = FlappingProxy((server.host, server.port), rng=random.Random(SEED + 1),
                          flap_every=(1.0, 2.0), down_for=(0.1, 0.6), truncate_p=0.2,
                          cut_request_p=0.08).start()
    fwd = Forwarder(edge_path, proxy.url, central.store_token, batch_size=100, lanes=2,
                    timeout_s=5, backoff_base_s=0.05, backoff_cap_s=0.5,
                    rng=random.Random(SEED + 2))
    stop = threading.Event()
    forwarder = threading.Thread(target=fwd.run, args=(stop, 0.02), name="forwarder")
    monitor = OrderMonitor(central, events)
    started = time.monotonic()
    try:
        proxy.start_flapping()
        forwarder.start()
        monitor.thread.start()
        # The store stays open: the edge keeps recording while the link flaps.
        chunk = 100
        live = events[BACKLOG:]
        pace = (FLAP_S - 2.0) / (len(live) / chunk)
        for start in range(0, len(live), chunk):
            write_outbox(edge, live[start:start + chunk])
            time.sleep(pace)
        wait_for(lambda: time.monotonic() - started >= FLAP_S, FLAP_S, "the flapping period")
        proxy.stop_flapping()
        flapped = dict(proxy.stats)

        def drained() -> bool:
            if not forwarder.is_alive():
                return True  # reported below rather than waiting out the timeout
            with sqlite3.connect(edge_path) as conn:
                return conn.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"
                                    ).fetchone()[0] == 0

        wait_for(drained, 30, "the outbox to drain once the network settled")
        assert forwarder.is_alive(), "the forwarder thread died (see the thread error above)"
        metrics = fwd.metrics()
    finally:
        stop.set()
        monitor.stop.set()
        for thread in (forwarder, monitor.thread):
            if thread.ident is not None:
                thread.join(10)
        fwd.close()
        edge.conn.close()
        proxy.stop()  # raises if its thread does not end
    assert not forwarder.is_alive() and not monitor.thread.is_alive()

    # The network really misbehaved, and central really received replays of committed batches.
    assert flapped["flaps"] >= 4 and flapped["refused_windows"] >= 4, flapped
    assert flapped["truncated_after_200"] >= 3 and flapped["requests_cut"] >= 1, flapped
    assert fwd.counters["failures_total"] >= 5, fwd.counters
    assert duplicates["duplicate"] > 0, "no committed batch was resent"

    # Every event in central exactly once.
    expected = [e["event_id"] for _, e in events]
    stored = monitor.snapshot()
    assert len(stored) == len(set(stored)) == len(expected)
    assert set(stored) == set(expected)

    # The outbox is fully acknowledged, with no error left behind.
    with sqlite3.connect(edge_path) as conn:
        unsent, errors, retried, rows = conn.execute(
            "SELECT SUM(sent_at IS NULL), SUM(last_error IS NOT NULL), SUM(attempts > 1), "
            "COUNT(*) FROM outbox").fetchone()
    assert (unsent, errors, rows) == (0, 0, len(events))
    assert retried > 0
    assert fwd.counters["sent_total"] == len(events)
    assert metrics["backlog"] == 0 and metrics["oldest_unsent_age_s"] == 0

    # Per-customer order: never seen out of order while draining...
    monitor.check(stored)
    assert monitor.polls >= 20 and not monitor.violations, monitor.violations[:5]
    if central.backend == "sqlite":
        # ...and, SQLite committing one batch at a time, each batch's ingest time is its
        # commit order: along each customer's sequence it never goes back.
        rows = central.db.run(lambda tx: tx.all("SELECT event_id, ingested_at FROM events"),
                              write=False)
        at = {r["event_id"]: r["ingested_at"] for r in rows}
        by_key: dict[str, list[float]] = defaultdict(list)
        for key, e in events:
            by_key[key].append(at[e["event_id"]])
        assert all(ts == sorted(ts) for ts in by_key.values())

    # The profiles count each event once: a consenting customer's events, interests scored.
    per_customer = Counter(key for key, _ in events)
    counted = central.db.run(lambda tx: tx.all(
        "SELECT customer_id, COUNT(*) AS n FROM events WHERE customer_id IS NOT NULL "
        "GROUP BY customer_id"), write=False)
    assert {r["customer_id"]: r["n"] for r in counted} == {
        c: per_customer[c] for c in consenting if per_customer[c]}
    for cust in consenting[:3]:
        profile = central.profile(cust)
        shoes = {c["category"]: c["score"] for c in profile["interests"]["categories"]}["shoes"]
        assert shoes == pytest.approx(per_customer[cust] - 1, rel=0.01), (cust, shoes)
