"""Fetch a shopper's profile summary from central the moment they identify at a kiosk.

The kiosk's ``kiosk_profile`` request is answered in the writer from the
``customer_cache`` table, and the writer must never wait on the network. So
when the edge announces ``customer_identified`` to a kiosk, this prefetcher
(its own thread, its own connection) asks central for that customer's points,
consent and recent activity and writes them to the cache; the kiosk's request,
a few milliseconds later, finds them there (or ``pending`` and asks again).
When central is down the previous cached copy is what the kiosk shows, marked
``offline``; a customer never seen here shows no points rather than a guess.

A change made elsewhere (points earned on the web, consent withdrawn in the app)
reaches the kiosk by a **short-TTL refresh**, not a push: while a shopper is
identified at a kiosk (an open kiosk session), their summary is fetched again
every :data:`REFRESH_S`, and the kiosk asks the edge again every few seconds.
A push from central would need a per-store bridge carrying customer ids over the
store broker, or a new per-store change feed; the refresh costs one indexed,
rate-limited lookup per shopper standing at a kiosk, needs nothing new in central,
and only ever concerns customers who are in the store right now. Worst case a
web change shows at the kiosk after ``REFRESH_S`` plus the kiosk's own poll
interval (``tests/edge/test_kiosk_loyalty.py`` measures it).

``fetched_at`` is when the fetch *started*: an entry central accepted after that
moment may be missing from the figure, and ``edge/kiosk_loyalty.py`` applies it
on top. A consent decision made at this kiosk (``consent_local``) wins over the
cached answer until central has it (its outbox event was acknowledged before a
fetch started); from then on central's answer, withdrawals first, is the truth.
Central answers 404 for a customer it will not summarise to this store (no
tracking consent, e.g. just withdrawn on the web): the history is dropped from
the cache at once, the points stay as last known.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from contract.central_api import customer_path, store_points_path

from .central_client import SyncError
from .db import connect

log = logging.getLogger("vitrine.edge.kiosk_profiles")
#: Waits between tries while central does not answer (the kiosk waits about 6 s).
RETRY_DELAYS_S = (0.3, 0.6, 1.2, 2.4, 0.0)
#: While a shopper is identified at a kiosk, their summary is fetched again this often
#: (a member without tracking consent, three lookups each time, a third as often).
REFRESH_S = 2.0
NO_CONSENT_REFRESH_FACTOR = 3
#: A kiosk session older than this is not refreshed any more (a forgotten session).
REFRESH_MAX_SESSION_S = 900.0


class ProfileSource(Protocol):
    """Central's customer profile (``GET /api/v1/customers/<id>``); raises on failure."""

    def fetch(self, customer_id: str) -> dict[str, Any]: ...


class CentralProfiles:
    """Profile lookups over HTTP with the store token, short timeout (a shopper is waiting).

    Central summarises a customer to a store only with tracking consent; without it
    (its 404) the store may still read the member's points balance for a while after
    they showed their card here, so the kiosk greets every member with their points.
    """

    def __init__(self, url: str, token: str, store_id: str, timeout_s: float = 3.0) -> None:
        from .central_client import CentralReader

        self.reader = CentralReader(url, token, timeout_s)
        self.store_id = store_id

    def fetch(self, customer_id: str) -> dict[str, Any]:
        try:
            return self.reader.get(customer_path(customer_id))
        except SyncError as exc:
            if exc.status != 404:
                raise
        points = self.reader.get(store_points_path(self.store_id, customer_id))
        # Both answers depend on the card tap reaching central; if it landed between the
        # two reads, the summary is there now. Ask once more rather than greet a
        # consenting member without their history.
        try:
            return self.reader.get(customer_path(customer_id))
        except SyncError as exc:
            if exc.status != 404:
                raise
        return {"customer_id": customer_id, "loyalty_points": points.get("loyalty_points"),
                "tracking": False}


def summary(profile: dict[str, Any]) -> tuple[int, bool, list[str]]:
    """(points, tracking consent, recently seen GTINs) out of central's answer.

    A store token gets central's store summary: no ``consents`` (central answers it
    only while the customer's tracking consent holds), this store's part of the
    timeline, and the interests scored over every channel. Without that consent it
    gets the points alone (:class:`CentralProfiles` marks them ``tracking: false``).
    """
    consents = profile.get("consents")
    if profile.get("tracking") is False:
        granted = False
    elif isinstance(consents, dict):
        tracking = consents.get("tracking")
        granted = bool(tracking.get("granted")) if isinstance(tracking, dict) else False
    else:
        granted = True
    recent: list[str] = []
    interests = profile.get("interests")
    products = interests.get("products") if isinstance(interests, dict) else None
    timeline = profile.get("timeline")
    for entry in [*(timeline if isinstance(timeline, list) else []),
                  *(products if isinstance(products, list) else [])]:
        gtin = entry.get("gtin") if isinstance(entry, dict) else None
        if isinstance(gtin, str) and gtin not in recent:
            recent.append(gtin)
    if not granted:
        recent = []
    points = profile.get("loyalty_points")
    return (points if isinstance(points, int) and points > 0 else 0), granted, recent[:10]


class ProfilePrefetcher:
    def __init__(self, db_path: str | Path, source: ProfileSource, *,
                 clock: Callable[[], float] = time.time, refresh_s: float = REFRESH_S) -> None:
        self.db_path = db_path
        self.source = source
        self.clock = clock
        self.refresh_s = refresh_s
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="edge-kiosk-profiles",
                                        daemon=True)
        self.fetched = 0
        self.failed = 0

    def start(self) -> ProfilePrefetcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(5)

    def want(self, customer_id: str) -> None:
        self._queue.put(customer_id)

    def on_event(self, kind: str, event: dict[str, Any]) -> None:
        """An edge listener: prefetch for every ``customer_identified`` sent to a kiosk."""
        if kind == "command.kiosk" and event.get("cmd") == "customer_identified":
            customer = event.get("customer_id")
            if isinstance(customer, str):
                self.want(customer)

    def _run(self) -> None:
        conn = connect(self.db_path).conn
        try:
            while True:
                try:
                    customer_id = self._queue.get(timeout=self.refresh_s / 4)
                except queue.Empty:
                    self.refresh_due(conn)
                    continue
                if customer_id is None:
                    return
                # Central answers a store only for customers it has seen identify in that
                # store: the presence event may still be on its way through the outbox.
                for delay in RETRY_DELAYS_S:
                    if self.fetch_now(conn, customer_id):
                        break
                    time.sleep(delay)
        finally:
            conn.close()

    def refresh_due(self, conn: Any) -> int:
        """Fetch again the summaries of shoppers identified at a kiosk right now whose
        copy is older than ``refresh_s``; return how many were fetched."""
        now = self.clock()
        due = [r[0] for r in conn.execute(
            "SELECT DISTINCT s.customer_id FROM sessions s LEFT JOIN customer_cache c "
            "ON c.customer_id = s.customer_id WHERE s.kind = 'kiosk' AND s.ended_at IS NULL "
            "AND s.customer_id IS NOT NULL AND s.started_at >= ? "
            "AND coalesce(c.fetched_at, 0) <= ? - CASE WHEN coalesce(c.consent_local, "
            "c.consent, 1) THEN 0 ELSE ? END AND s.rowid = (SELECT max(rowid) FROM "
            "sessions WHERE device_id = s.device_id)",
            (now - REFRESH_MAX_SESSION_S, now - self.refresh_s,
             (NO_CONSENT_REFRESH_FACTOR - 1) * self.refresh_s))]
        return sum(self.fetch_now(conn, customer_id) for customer_id in due)

    def fetch_now(self, conn: Any, customer_id: str) -> bool:
        """Fetch and cache one profile; False (points untouched) when central fails."""
        started = self.clock()
        try:
            points, consent, recent = summary(self.source.fetch(customer_id))
        except SyncError as exc:
            self.failed += 1
            if exc.status == 404:  # central will not summarise them to us: no consent
                self._forget_history(conn, customer_id, started)
            log.info("profile fetch failed (%s): kiosk shows the cached copy", exc.status)
            return False
        except Exception as exc:  # central down, slow, or answering garbage
            self.failed += 1
            log.info("profile fetch failed (%s): kiosk shows the cached copy",
                     type(exc).__name__)
            return False
        conn.execute(
            "INSERT INTO customer_cache (customer_id, points, consent, recent, fetched_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (customer_id) DO UPDATE SET "
            "points = excluded.points, consent = excluded.consent, recent = excluded.recent, "
            "fetched_at = excluded.fetched_at",
            (customer_id, points, consent, json.dumps(recent), started))
        self._settle_local_consent(conn, customer_id, started)
        self.fetched += 1
        return True

    @staticmethod
    def _settle_local_consent(conn: Any, customer_id: str, started: float) -> None:
        """Central's answer takes over from the kiosk's decision once central had it when
        this fetch started (its outbox row acknowledged before, or already gone)."""
        conn.execute(
            "UPDATE customer_cache SET consent_local = NULL, consent_event = NULL "
            "WHERE customer_id = ? AND consent_local IS NOT NULL AND NOT EXISTS ("
            "SELECT 1 FROM outbox o WHERE o.event_id = customer_cache.consent_event "
            "AND (o.sent_at IS NULL OR o.sent_at >= ?))", (customer_id, started))

    def _forget_history(self, conn: Any, customer_id: str, started: float) -> None:
        conn.execute("UPDATE customer_cache SET consent = 0, recent = '[]' "
                     "WHERE customer_id = ?", (customer_id,))
        self._settle_local_consent(conn, customer_id, started)
