"""Sync from central to the edge: catalogue, prices, stock, erasures; applied atomically.

The store serves kiosks and signage from local tables, never from central: a
link down for days means older prices, not a dead store. :class:`SyncClient`
pulls each feed of central/feeds on its own cadence (catalogue every three
days, prices daily, stock every minute, erasures every five minutes, the
store's order changes every minute by default); stock is also pushed in real
time over MQTT (:mod:`contract.stock_push`), and a pushed erasure or order nudge
makes that feed due at once (:mod:`contract.erasure_push`,
:mod:`contract.order_push`; orders are applied by :mod:`edge.order_feed`).

Each pull fetches every page first, then applies them in **one** SQLite
transaction on the client's own connection (``BEGIN IMMEDIATE``; WAL lets the
edge writer keep reading meanwhile and its busy timeout covers the short
write), together with the feed's new version. A feed that fails half-way
(central gone between two pages, a row the schema refuses) therefore leaves
the previous copy and cursor intact, and the next pull resumes from there.

After catalogue and price changes the affected rows of ``products`` (what
enrichment and kiosks read) are rewritten in the same transaction with the
effective price decided by :mod:`edge.rules` (central price list vs. a local
markdown), so the store shows the same price as every channel unless a rule
says otherwise. ``on_change(feed)`` is then called, e.g. to run
``Catalogue.reload()``.

Failures back off per feed (full jitter, capped by ``backoff_cap_s`` and the
cadence); ``metrics()`` exposes ``last_sync_age_s`` per feed for alerting.
"""

from __future__ import annotations

import logging
import math
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contract.erasure_push import (
    sync_erasures_topic,
)
from contract.order_push import NudgeError, parse_nudge, sync_orders_topic
from contract.service_client import ServiceClient
from contract.stock_push import StockMessageError, parse_stock_message, sync_stock_topic

from . import content_feed, erasure, order_feed
from .assets import AssetCache
from .central_client import CentralReader, SyncError
from .db import immediate
from .feed_apply import APPLIERS, apply_stock, materialise
from .feed_fetch import fetch_feed
from .local_overrides import write_markdown, write_store_count
from .rules import Rules
from .stock_view import WEB_WAREHOUSE, stock_view

log = logging.getLogger("vitrine.edge.sync")

DAY_S = 86_400.0
FEEDS = ("catalogue", "prices", "stock")
#: Erasures and orders: the pull is the fallback for an edge that missed the nudge
#: (offline, no bridge).
DEFAULT_CADENCES: dict[str, float] = {"catalogue": 3 * DAY_S, "prices": DAY_S, "stock": 60.0,
                                      "erasures": 300.0, "orders": 60.0}
#: Feeds a pushed ``{"seq": N}`` nudge makes due at once.
NUDGED_FEEDS = ("erasures", "orders")


@dataclass(frozen=True)
class MqttSettings:
    """Where the real-time stock push comes from: the store broker, edge credentials."""

    host: str
    port: int
    username: str = "edge"
    password: str = ""
    client_id: str = "vitrine-edge-sync"
    #: "5" or "3.1.1" (the edge's ``mqtt_protocol``; the embedded broker speaks 3.1.1 only).
    protocol: str = "5"



class SyncClient:
    """Keeps the edge's local copy of central's feeds current; see the module docstring.

    ``cadences`` maps ``catalogue``/``prices``/``stock``/``erasures`` to seconds
    between pulls (missing feeds use :data:`DEFAULT_CADENCES`; a feed mapped to
    0 or less is not pulled). One connection, guarded by a lock, serves the
    loop thread, the MQTT push thread and the store-side setters.
    """

    def __init__(self, db_path: str, central_url: str, store_token: str,
                 cadences: Mapping[str, float] | None = None, *, store_id: str,
                 rules: Rules | None = None, on_change: Callable[[str], None] | None = None,
                 mqtt: MqttSettings | None = None, page_size: int = 5000,
                 timeout_s: float = 30.0, backoff_base_s: float = 1.0,
                 backoff_cap_s: float = 300.0, warehouse: str = WEB_WAREHOUSE,
                 clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None,
                 assets: AssetCache | None = None) -> None:
        merged = {**DEFAULT_CADENCES, **(cadences or {})}
        unknown = set(merged) - set(DEFAULT_CADENCES)
        if unknown:
            raise ValueError(f"unknown feeds in cadences: {', '.join(sorted(unknown))}")
        self.cadences = {f: float(s) for f, s in merged.items() if s and s > 0}
        self.store_id = store_id
        self.reader = CentralReader(central_url, store_token, timeout_s)
        self.rules = rules or Rules()
        self.on_change = on_change
        self.mqtt = mqtt
        self.page_size = page_size
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.warehouse = warehouse
        self.clock = clock
        self.rng = rng or random.Random()
        #: Where catalogue pictures go (edge/content_feed.py); None: content without pictures.
        self.assets = assets
        self.failures = {f: 0 for f in DEFAULT_CADENCES}
        self.counters = {"applied_total": 0, "failures_total": 0, "pushes_total": 0,
                         "pushes_rejected_total": 0, "erased_rows_total": 0,
                         "erasure_pushes_total": 0, "order_pushes_total": 0,
                         "order_changes_total": 0}
        self._conn = sqlite3.connect(db_path, timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.RLock()
        self._due = {f: self._first_due(f) for f in self.cadences}
        self._next_reprice = -math.inf
        self._nudged_at = {f: -math.inf for f in NUDGED_FEEDS}
        #: Called with the order changes each pull applied (new web orders, statuses
        #: moved by central), after the commit; e.g. the demo prints them.
        self.on_orders: Callable[[list[dict[str, Any]]], None] | None = None
        self._stop = threading.Event()
        #: Set by a nudge (or stop): the loop ticks at once instead of finishing its sleep.
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._push: Any = None
        #: Set once the stock push subscription is acknowledged by the broker.
        self.push_ready = threading.Event()

    # -- state ------------------------------------------------------------------------------

    def _state(self, feed: str) -> tuple[int, float | None, str | None]:
        with self._lock:
            row = self._conn.execute("SELECT version, last_success_at, last_error FROM "
                                     "sync_state WHERE feed = ?", (feed,)).fetchone()
        return (int(row[0]), row[1], row[2]) if row else (0, None, None)

    def _first_due(self, feed: str) -> float:
        """A restarted edge does not re-pull a three-day catalogue it got an hour ago."""
        _, last, _ = self._state(feed)
        return -math.inf if last is None else last + self.cadences[feed]

    def _record(self, feed: str, *, version: int | None = None, error: str | None = None
                ) -> None:
        """A success is written inside the apply transaction (cursor moves with the data);
        a failure is written on its own, leaving the cursor where the data is."""
        now = self.clock()
        if version is not None:
            self._conn.execute(
                "INSERT INTO sync_state (feed, version, last_success_at, last_attempt_at, "
                "last_error) VALUES (?, ?, ?, ?, NULL) ON CONFLICT (feed) DO UPDATE SET "
                "version = excluded.version, last_success_at = excluded.last_success_at, "
                "last_attempt_at = excluded.last_attempt_at, last_error = NULL",
                (feed, version, now, now))
        else:
            with self._lock:
                self._conn.execute(
                    "INSERT INTO sync_state (feed, last_attempt_at, last_error) VALUES "
                    "(?, ?, ?) ON CONFLICT (feed) DO UPDATE SET last_attempt_at = "
                    "excluded.last_attempt_at, last_error = excluded.last_error",
                    (feed, now, (error or "")[:500]))

    def metrics(self) -> dict[str, Any]:
        """Per feed: ``version``, ``last_sync_age_s`` (None = never), failures, last error."""
        now = self.clock()
        feeds = {}
        for feed in DEFAULT_CADENCES:
            version, last, error = self._state(feed)
            feeds[feed] = {"version": version,
                           "last_sync_age_s": None if last is None else max(0.0, now - last),
                           "consecutive_failures": self.failures[feed], "last_error": error}
        return {"feeds": feeds,
                "last_sync_age_s": {f: m["last_sync_age_s"] for f, m in feeds.items()},
                **self.counters}

    # -- one transaction ---------------------------------------------------------------------

    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``work`` in one short ``BEGIN IMMEDIATE`` transaction; all or nothing."""
        with self._lock:
            conn = self._conn
            with immediate(conn):
                return work(conn)

    def _changed(self, feed: str) -> None:
        """Tell the node (e.g. reload its Catalogue); its bug must not stop the sync."""
        if self.on_change is None:
            return
        try:
            self.on_change(feed)
        except Exception:
            log.exception("on_change(%r) failed; the local copy is applied regardless", feed)

    # -- pulling -----------------------------------------------------------------------------

    def sync_once(self, feed: str) -> int:
        """Pull ``feed`` now and apply it atomically; return items applied.

        Raises :class:`SyncError` when central cannot be read and
        ``sqlite3.Error``/``KeyError``/``ValueError`` when the feed cannot be
        applied; in both cases nothing changed locally.
        """
        since, _, _ = self._state(feed)
        if feed == "orders":
            return self._sync_orders(since)
        if feed == "erasures":
            orders, cursor = erasure.fetch(self.reader, self.store_id, since)
            now = self.clock()
            erased = self._write(lambda c: (erasure.apply(c, orders, now),
                                            self._record(feed, version=cursor))[0])
            self.counters["erased_rows_total"] += erased
            if orders:
                log.info("applied %d erasure order(s), %d local rows deleted", len(orders),
                         erased)
                self._changed(feed)
            return len(orders)
        full, version, items = fetch_feed(self.reader, self.store_id, feed, since,
                                          self.page_size)
        if not items and not full and version == since:
            self._write(lambda c: self._record(feed, version=version))
            return 0

        pictures = (content_feed.fetch_pictures(items, self.reader.get_bytes, self.assets)
                    if feed == "catalogue" and self.assets is not None else {})

        def work(conn: sqlite3.Connection) -> None:
            gtins = APPLIERS[feed](conn, items, full)
            if feed == "catalogue":
                content_feed.apply_content(conn, items, pictures, self.clock())
            if feed != "stock":
                soonest = materialise(conn, self.store_id, self.rules, gtins, self.clock())
                self._next_reprice = min(self._next_reprice, soonest)
            self._record(feed, version=version)

        self._write(work)
        self.counters["applied_total"] += len(items)
        log.info("%s feed applied: %s, %d item(s), version %d -> %d", feed,
                 "full" if full else "delta", len(items), since, version)
        self._changed(feed)
        return len(items)

    def _sync_orders(self, since: int) -> int:
        changes, cursor = order_feed.fetch(self.reader, self.store_id, since)
        now = self.clock()
        applied = self._write(lambda c: (order_feed.apply(c, changes, now, store_id=self.store_id),
                                         self._record("orders", version=cursor))[0])
        self.counters["order_changes_total"] += len(applied)
        for change in applied:
            log.info("order %s %s (central, %s)", change["order_id"],
                     "arrived: " + change["status"] if change["previous"] is None
                     else f"{change['previous']} -> {change['status']}", change["changed_by"])
        if applied and self.on_orders is not None:
            try:
                self.on_orders(applied)
            except Exception:
                log.exception("on_orders failed; the changes are applied regardless")
        return len(changes)

    def reprice(self) -> None:
        """Recompute every product's price (a validity window opened or closed)."""
        now = self.clock()
        self._next_reprice = self._write(
            lambda c: materialise(c, self.store_id, self.rules, None, now))
        self._changed("prices")

    def tick(self) -> list[str]:
        """Pull every feed that is due (backing off the failing ones); return those pulled."""
        now = self.clock()
        ran = []
        for feed, cadence in self.cadences.items():
            if self._stop.is_set() or now < self._due[feed]:
                continue
            ran.append(feed)
            try:
                self.sync_once(feed)
            except (SyncError, sqlite3.Error, KeyError, TypeError, ValueError) as exc:
                self.failures[feed] += 1
                self.counters["failures_total"] += 1
                ceiling = min(self.backoff_cap_s, cadence,
                              self.backoff_base_s * 2 ** min(self.failures[feed], 30))
                delay = self.rng.uniform(0, ceiling)
                self._due[feed] = now + delay
                self._record(feed, error=f"{type(exc).__name__}: {exc}")
                log.warning("%s sync failed (%s); serving the local copy, retry %d in %.1fs",
                            feed, exc, self.failures[feed], delay)
                continue
            self.failures[feed] = 0
            # A nudge that came in while this pull ran may name a change it missed.
            nudged = self._nudged_at.get(feed, -math.inf) >= now
            self._due[feed] = -math.inf if nudged else now + cadence
        if now >= self._next_reprice:
            try:
                self.reprice()
            except sqlite3.Error as exc:  # e.g. disk full: keep the old prices, retry soon
                self._next_reprice = now + 60.0
                log.warning("repricing failed (%s); retrying in 60 s", exc)
        return ran

    # -- the store's own opinions --------------------------------------------------------------

    def set_markdown(self, gtin: str, price_cents: int | None, *, valid_to: float | None = None,
                     set_by: str | None = None) -> None:
        """A store manager's markdown (None removes it); weighed by the ``price`` rule."""
        now = self.clock()

        def work(conn: sqlite3.Connection) -> None:
            soonest = write_markdown(conn, self.store_id, self.rules, gtin, price_cents,
                                     now=now, valid_to=valid_to, set_by=set_by)
            self._next_reprice = min(self._next_reprice, soonest)

        self._write(work)
        self._changed("prices")

    def record_store_count(self, gtin: str, quantity: int, *, counted_by: str | None = None,
                           at: float | None = None) -> None:
        """A shelf count by store staff; weighed against central's figure by ``stock``."""
        at = self.clock() if at is None else at
        self._write(lambda c: write_store_count(c, gtin, quantity, at=at,
                                                counted_by=counted_by))

    def stock_view(self, gtin: str) -> dict[str, Any]:
        """What a kiosk shows: this store (rule-resolved), other stores, the web warehouse."""
        with self._lock:
            return stock_view(self._conn, self.store_id, gtin, self.rules, self.clock(),
                              self.warehouse)

    # -- real-time stock push ----------------------------------------------------------------

    def apply_stock_push(self, payload: bytes) -> int:
        """Apply one pushed stock message; the pull cursor is untouched (pushes may reorder)."""
        try:
            items = parse_stock_message(payload)
        except StockMessageError as exc:
            self.counters["pushes_rejected_total"] += 1
            log.warning("stock push rejected: %s", exc)
            return 0
        self._write(lambda c: apply_stock(c, items, False))
        self.counters["pushes_total"] += 1
        self._changed("stock")
        return len(items)

    def apply_erasure_push(self, payload: bytes) -> bool:
        """A nudge: pull the erasure feed at the next tick (within ``idle_max_s``) if behind."""
        return self._apply_nudge("erasures", "erasure", payload)

    def apply_order_push(self, payload: bytes) -> bool:
        """A nudge: pull the store's order changes at the next tick if behind."""
        return self._apply_nudge("orders", "order", payload)

    def _apply_nudge(self, feed: str, what: str, payload: bytes) -> bool:
        """Both nudges are ``{"seq": N}`` (:mod:`contract.erasure_push`); one parser."""
        try:
            seq = parse_nudge(payload)
        except NudgeError as exc:
            self.counters["pushes_rejected_total"] += 1
            log.warning("%s push rejected: %s", what, exc)
            return False
        self.counters[f"{what}_pushes_total"] += 1
        return self._nudge(feed, seq)

    def _nudge(self, feed: str, seq: int) -> bool:
        if feed not in self._due or seq <= self._state(feed)[0]:
            return False  # pulls disabled, or already applied
        self._nudged_at[feed] = self.clock()
        self._due[feed] = -math.inf
        self.failures[feed] = 0
        self._wake.set()
        return True

    def _start_push(self) -> None:
        cfg = self.mqtt
        assert cfg is not None

        def on_push(payload: bytes) -> None:
            try:
                self.apply_stock_push(payload)
            except sqlite3.Error as exc:  # the next pull brings it anyway
                log.warning("stock push not applied: %s", exc)

        client = ServiceClient(cfg.host, cfg.port, cfg.username, cfg.password,
                               client_id=cfg.client_id, protocol=cfg.protocol)
        client.subscribe(sync_stock_topic(self.store_id), on_push)
        client.subscribe(sync_erasures_topic(self.store_id), self.apply_erasure_push)
        client.subscribe(sync_orders_topic(self.store_id), self.apply_order_push)
        self.push_ready = client.subscribed
        self._push = client.start()

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self, idle_max_s: float = 1.0) -> None:
        """Tick until :meth:`stop`; sleeps until the next feed is due (at most ``idle_max_s``)."""
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a bug or a locked database: loud, but the loop survives
                log.exception("sync tick failed")
                self._stop.wait(1.0)
                continue
            wake = min([*self._due.values(), self._next_reprice])
            self._wake.wait(min(max(wake - self.clock(), 0.05), idle_max_s))
            self._wake.clear()

    def start(self) -> SyncClient:
        """Start the pull loop (and the stock push subscriber if ``mqtt`` is set)."""
        if self.mqtt is not None:
            self._start_push()
        self._thread = threading.Thread(target=self.run, name="edge-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.reader.timeout_s + 5)
        if self._push is not None:
            self._push.close()
        self._conn.close()
