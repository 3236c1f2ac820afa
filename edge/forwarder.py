"""Store-and-forward: drain the edge outbox to the central service.

Delivery is at-least-once: a row is marked sent only after central answered
2xx for it, so a crash (even SIGKILL) between sending and marking resends the
batch on restart. Central's ingest is idempotent on ``event_id`` (a
deterministic uuid5 on the edge), which turns at-least-once into exactly-once
in the profile. Rows are read in ``seq`` order, a window at a time, and split
into ``lanes`` concurrent batches by ``customer_key``; the next window waits
until every lane is acknowledged. Each customer's events therefore reach
central in the order the edge recorded them, while central works on several
batches at once (one sequential stream leaves its workers idle half the time).

Failures back off exponentially with full jitter (``uniform(0, min(cap, base *
2**n))``) so hundreds of stores do not hammer central in step when it comes
back after an outage.

Retention policy (see docs/operations.md):

- orders are never deleted before central acknowledged them, whatever their
  age and whatever the disk usage;
- orders and order status changes (kind ``order_status``, ``edge/order_status.py``)
  go one by one, in ``seq`` order, to ``POST /api/v1/orders`` and
  ``POST /api/v1/orders/<id>/status``. A permanent refusal (any 4xx but 401,
  404, 408, 425 and 429: a bad order, an order another store's evidence does
  not cover, a move central refuses because it cancelled the order meanwhile) is
  a dead letter, never an endless retry: the row is marked sent with
  ``last_error = 'rejected: HTTP <status>: <reason>'``, the order itself keeps
  the reason in ``kiosk_orders.central_error`` (shown on the panel's operations
  page and pickup queue, counted in ``refused_orders``; it outlives the outbox
  row), logged at ERROR once. A status change of an order central refused is a
  dead letter without being sent. 401 (the store's credential) and 429 back off
  like an outage; a status change for an order central does not have yet (404)
  waits for it, retried every ``backoff_cap_s``. An order a kiosk took for
  another store with an identified customer waits until the events recorded
  before it are sent (the customer's identification here is central's evidence,
  ``central/orders.py``);
- security events are never expired unsent either;
- interest/presence rows still unsent after ``tracking_max_age_s`` (30 days by
  default) expire: deleted, counted in ``expired_total`` and logged CRITICAL;
- sent rows of every kind are deleted ``sent_retention_s`` (3 days) after
  acknowledgement;
- events central rejected as invalid are marked sent with ``last_error =
  'rejected: <reason>'`` (dead letters: retrying cannot fix them) and kept for
  the same 3 days for inspection.

Disk budget: when the SQLite file's used pages exceed ``disk_budget_bytes``
(1 GiB by default, about 2 million outbox rows) the forwarder logs CRITICAL
every ``alarm_interval_s``. The edge's own retention (edge/retention.py) sheds
old events, quarantine and sent rows first, on every edge. With
``shed_tracking_over_budget=True`` the forwarder also deletes the oldest unsent
interest rows, then presence rows, until back under budget, never one younger
than ``shed_min_age_s`` (an hour: shedding what was tapped seconds ago buys
nothing); orders and security events are never shed.

The forwarder owns only ``sent_at``, ``attempts`` and ``last_error`` (and an
order's ``central_error``) and the deletions above; the edge writes the rows
through its own connection (WAL lets both work at once).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import random
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from contract.central_api import EVENTS_PATH, ORDERS_PATH, order_status_path

from . import kiosk_loyalty
from .db import immediate

log = logging.getLogger("vitrine.forwarder")

DAY_S = 86_400.0
#: Kinds sent in ``POST /api/v1/events`` batches; orders go one by one to ``/orders``.
#: ``loyalty`` and ``consent`` are the kiosk channel's (edge/kiosk_loyalty.py,
#: edge/kiosk_service.py): a loyalty entry waits until its order reached central.
EVENT_KINDS = ("interest", "presence", "security", "play", "loyalty", "consent")
#: A loyalty entry names its order; central refuses it before the order, so it waits.
_AFTER_ITS_ORDER = ("NOT (kind = 'loyalty' AND EXISTS (SELECT 1 FROM outbox o WHERE "
                    "o.kind = 'order' AND o.sent_at IS NULL AND "
                    "o.event_id = json_extract(outbox.payload, '$.reference.id')))")
#: Sent one by one, in seq order: a new order, and a status change the store made.
ORDER_KINDS = ("order", "order_status")
#: 4xx answers that do not refuse the row itself (credential, not there yet, timeouts,
#: rate limits): retried. Every other 4xx to an order row is a dead letter.
RETRY_4XX = (401, 404, 408, 425, 429)
#: An order taken for another store with an identified customer waits for the events
#: recorded before it: the customer's identification in this store is central's evidence.
_AFTER_ITS_EVIDENCE = (
    "NOT (kind = 'order' AND CASE WHEN json_valid(payload) THEN "
    "json_extract(payload, '$.customer_id') IS NOT NULL "
    "AND json_extract(payload, '$.fulfilment.type') = 'click_and_collect' "
    "AND json_extract(payload, '$.fulfilment.store_id') <> "
    "json_extract(payload, '$.store_id') ELSE 0 END "
    "AND EXISTS (SELECT 1 FROM outbox e WHERE e.sent_at IS NULL AND e.seq < outbox.seq "
    "AND e.kind IN ('presence', 'interest')))")
#: Kinds the retention policy may expire or shed; everything else waits forever.
EXPIRABLE_KINDS = ("interest", "presence", "play")
#: Orders tried per cycle (they are rare, and each is its own request).
ORDERS_PER_CYCLE = 50


class DeliveryError(Exception):
    """Central could not be reached or did not acknowledge; the batch will be retried."""


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    event_id: str
    kind: str
    customer_key: str
    payload: str


class Forwarder:
    """Drains one edge outbox (SQLite file at ``db_path``) into central."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        central_url: str,
        store_token: str,
        batch_size: int = 500,
        *,
        lanes: int = 2,
        timeout_s: float = 30.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 60.0,
        disk_budget_bytes: int = 1 << 30,
        shed_tracking_over_budget: bool = False,
        shed_min_age_s: float = 3600.0,
        sent_retention_s: float = 3 * DAY_S,
        tracking_max_age_s: float = 30 * DAY_S,
        housekeeping_interval_s: float = 60.0,
        alarm_interval_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.db_path = os.fspath(db_path)
        self.central_url = central_url.rstrip("/")
        self.store_token = store_token
        self.batch_size = batch_size
        self.lanes = max(1, lanes)
        self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="forwarder-lane")
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.disk_budget_bytes = disk_budget_bytes
        self.shed_tracking_over_budget = shed_tracking_over_budget
        self.shed_min_age_s = shed_min_age_s
        self.sent_retention_s = sent_retention_s
        self.tracking_max_age_s = tracking_max_age_s
        self.housekeeping_interval_s = housekeeping_interval_s
        self.alarm_interval_s = alarm_interval_s
        self.clock = clock
        self.rng = rng or random.Random()
        self.failures = 0
        self.counters = {"sent_total": 0, "rejected_total": 0, "expired_total": 0,
                         "shed_total": 0, "failures_total": 0}
        self._last_alarm = float("-inf")
        self._last_housekeeping = float("-inf")
        self._order_retry_at: dict[int, float] = {}
        self._conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.Lock()

    # -- metrics -----------------------------------------------------------------------------

    def disk_bytes(self) -> int:
        """Bytes of the database in use (pages minus free pages): what deletions give back."""
        page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
        free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * page_size

    def metrics(self) -> dict[str, Any]:
        """``backlog`` (unsent rows), ``oldest_unsent_age_s`` and counters, for monitoring."""
        with self._lock:
            count, oldest = self._conn.execute(
                "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE sent_at IS NULL").fetchone()
            orders = self._conn.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL "
                                        "AND kind IN ('order', 'order_status')").fetchone()[0]
            refused = self._refused_orders()
            disk = self.disk_bytes()
        return {
            "backlog": count,
            "unsent_orders": orders,
            "refused_orders": refused,
            "oldest_unsent_age_s": max(0.0, self.clock() - oldest) if oldest else 0.0,
            "disk_bytes": disk,
            "disk_budget_bytes": self.disk_budget_bytes,
            "over_budget": disk > self.disk_budget_bytes,
            "consecutive_failures": self.failures,
            **self.counters,
        }

    def _refused_orders(self) -> int:
        """Orders central refused (or refused a change of) and nobody settled yet."""
        return self._conn.execute("SELECT COUNT(*) FROM kiosk_orders WHERE central_error "
                                  "IS NOT NULL AND refusal_settled_by IS NULL").fetchone()[0]

    # -- delivery ----------------------------------------------------------------------------

    def _post(self, path: str, body: bytes) -> tuple[int, Any]:
        req = urllib.request.Request(self.central_url + path, data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {self.store_token}")
        # A reply cut part-way raises http.client's own errors (BadStatusLine, IncompleteRead),
        # which are not OSErrors: they are delivery failures too, or the forwarder thread dies.
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException) as read_exc:
                raise DeliveryError(f"{path}: HTTP {exc.code}, reply cut: {read_exc!r}"
                                    ) from read_exc
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw[:200].decode(errors="replace")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # refused, reset, timeout, reply cut short, bad JSON
            raise DeliveryError(f"{path}: {exc}") from exc

    def _pending(self, kind_clause: str, limit: int) -> list[Row]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT seq, event_id, kind, customer_key, payload FROM outbox "
                f"WHERE sent_at IS NULL "
                f"AND {kind_clause} ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [Row(*r) for r in rows]

    def _update(self, sql: str, rows: Sequence[tuple[Any, ...]],
                also: Callable[[sqlite3.Connection], object] | None = None) -> None:
        """Run ``sql`` for ``rows`` (and ``also``) in one transaction."""
        if not rows:
            return
        with self._lock, immediate(self._conn):
            self._conn.executemany(sql, rows)
            if also is not None:
                also(self._conn)

    def _mark_sent(self, seqs: Sequence[int], now: float, errors: dict[int, str],
                   loyalty: Sequence[tuple[str, str | None]] = ()) -> None:
        """Mark rows sent; settle the kiosk loyalty entries among them in the same commit."""
        self._update("UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = ? "
                     "WHERE seq = ?", [(now, errors.get(s), s) for s in seqs],
                     (lambda conn: kiosk_loyalty.settle(conn, loyalty, now)) if loyalty else None)

    def _mark_failed(self, seqs: Sequence[int], error: str) -> None:
        self._update("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                     [(error[:500], s) for s in seqs])

    def send_events(self) -> int:
        """Send the oldest unsent events, ``lanes`` batches at once; return rows settled.

        Rows are split into lanes by ``customer_key`` so each customer's events
        stay in one lane, in ``seq`` order, and the next window is read only
        once every lane has answered: per-customer order is preserved while
        central works on several batches at a time.
        """
        rows = self._pending(f"kind IN {EVENT_KINDS!r} AND {_AFTER_ITS_ORDER}",
                             self.batch_size * self.lanes)
        if not rows:
            return 0
        lanes: list[list[Row]] = [[] for _ in range(self.lanes)]
        for row in rows:
            lanes[zlib.crc32(row.customer_key.encode()) % self.lanes].append(row)
        futures = [self._pool.submit(self._send_lane, lane) for lane in lanes if lane]
        settled, error = 0, None
        for future in futures:
            try:
                settled += future.result()
            except DeliveryError as exc:
                error = exc
        if error is not None:
            raise error
        return settled

    def _send_lane(self, rows: list[Row]) -> int:
        """POST one batch; mark acknowledged and rejected rows; raise if any is left."""
        sendable, ids, corrupt = [], {}, {}
        for row in rows:
            try:
                payload = json.loads(row.payload)
                ids[row.seq] = payload.get("event_id") if isinstance(payload, dict) else None
                sendable.append(row)
            except ValueError:
                corrupt[row.seq] = "rejected: payload is not JSON"
        # The payloads are already JSON: splice them rather than re-encode them.
        body = ('{"events":[' + ",".join(r.payload for r in sendable) + "]}").encode()
        try:
            status, resp = self._post(EVENTS_PATH, body) if sendable else (200, {})
        except DeliveryError as exc:
            self._mark_failed([r.seq for r in rows], str(exc))
            raise
        if status != 200 or not isinstance(resp, dict):
            self._mark_failed([r.seq for r in rows], f"HTTP {status}: {resp}")
            raise DeliveryError(f"central answered {status}: {str(resp)[:200]}")
        acked = set(resp.get("accepted", [])) | set(resp.get("duplicate", []))
        errors = dict(corrupt)
        by_id = {ids[r.seq]: r.seq for r in sendable if isinstance(ids.get(r.seq), str)}
        for rej in resp.get("rejected", []):
            if not isinstance(rej, dict):
                continue
            # The parser's rejections carry the batch index; those central decides on
            # its data (a loyalty limit, a debit below zero) only the event id.
            index, event_id = rej.get("index"), rej.get("event_id")
            if isinstance(index, int) and 0 <= index < len(sendable):
                errors[sendable[index].seq] = f"rejected: {rej.get('reason')}"[:500]
            elif isinstance(event_id, str) and event_id in by_id:
                errors[by_id[event_id]] = f"rejected: {rej.get('reason')}"[:500]
        settled = [r.seq for r in rows if r.seq in errors or ids.get(r.seq) in acked]
        loyalty = [(r.event_id, errors[r.seq].removeprefix("rejected: ") if r.seq in errors
                    else None) for r in rows if r.kind == kiosk_loyalty.OUTBOX_KIND
                   and r.seq in set(settled)]
        self._mark_sent(settled, self.clock(), errors, loyalty)
        for event_id, reason in loyalty:
            if reason:
                log.warning("central refused kiosk loyalty entry %s: %s (the store collects "
                            "the difference at pick-up)", event_id, reason)
        with self._lock:
            self.counters["sent_total"] += len(settled) - len(errors)
            self.counters["rejected_total"] += len(errors)
        if errors:
            log.warning("central rejected %d event(s), kept as dead letters; first: %s",
                        len(errors), next(iter(errors.values())))
        if len(settled) < len(rows):
            raise DeliveryError(f"central acknowledged {len(settled)} of {len(rows)} events")
        return len(settled)

    def send_orders(self) -> int:
        """Send unsent orders and status changes one by one, in ``seq`` order; a permanent
        refusal is a dead letter with its reason (see the module docstring)."""
        now = self.clock()
        sent = 0
        for row in self._pending(f"kind IN {ORDER_KINDS!r} AND {_AFTER_ITS_EVIDENCE}",
                                 ORDERS_PER_CYCLE):
            if self._order_retry_at.get(row.seq, 0.0) > now:
                continue
            try:
                path, body, order_id = self._order_request(row)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self._dead_letter(row, None, f"not readable: {exc!r}")
                continue
            if row.kind == "order_status" and self._order_refused(order_id):
                self._dead_letter(row, order_id, "its order was refused by central")
                continue
            if row.kind == "order_status" and self._order_unsent(order_id):
                continue  # its order is held back (or failed) this cycle: central would 404
            try:
                status, resp = self._post(path, body)
            except DeliveryError as exc:
                self._mark_failed([row.seq], str(exc))
                raise
            if status in (200, 201):
                self._mark_sent([row.seq], self.clock(), {})
                self._order_retry_at.pop(row.seq, None)
                sent += 1
                continue
            if status >= 500 or status in (401, 429):
                self._mark_failed([row.seq], f"HTTP {status}: {resp}")
                raise DeliveryError(f"{row.kind} {row.event_id}: central answered {status}")
            if status not in RETRY_4XX:
                reason = resp.get("message") if isinstance(resp, dict) else resp
                self._dead_letter(row, order_id, f"HTTP {status}: {reason}")
                continue
            self._mark_failed([row.seq], f"HTTP {status}: {resp}")
            # A status change for an order central does not have yet (404), a timeout:
            # retry slowly; the order it waits for is ahead of it in the outbox.
            self._order_retry_at[row.seq] = now + self.backoff_cap_s
            log.warning("central answered %s %s with HTTP %s (%s); will retry", row.kind,
                        row.event_id, status, str(resp)[:200])
        self.counters["sent_total"] += sent
        return sent

    def _order_unsent(self, order_id: str) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM outbox WHERE event_id = ? AND kind = "
                                      "'order' AND sent_at IS NULL", (order_id,)
                                      ).fetchone() is not None

    def _order_refused(self, order_id: str | None) -> bool:
        """Did central refuse this order itself (not just one of its status changes)?"""
        with self._lock:
            row = self._conn.execute("SELECT central_error FROM kiosk_orders "
                                     "WHERE order_id = ?", (order_id,)).fetchone()
        return bool(row and row[0] and row[0].startswith("order refused"))

    def _dead_letter(self, row: Row, order_id: str | None, reason: str) -> None:
        """Settle ``row`` for good with ``reason``; the order keeps the first refusal."""
        what = "order refused" if row.kind == "order" else "status change refused"
        if row.kind == "order_status":
            with contextlib.suppress(ValueError, KeyError, TypeError):
                what = f"status {json.loads(row.payload)['status']} refused"
        error = f"rejected: {reason}"[:500]

        def mark_order(conn: sqlite3.Connection) -> None:
            if order_id is not None:
                conn.execute("UPDATE kiosk_orders SET central_error = coalesce(central_error, ?)"
                             " WHERE order_id = ?", (f"{what}: {reason}"[:500], order_id))

        self._update("UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = ? "
                     "WHERE seq = ?", [(self.clock(), error, row.seq)], mark_order)
        self._order_retry_at.pop(row.seq, None)
        with self._lock:
            self.counters["rejected_total"] += 1
        log.error("central refused %s %s for good (%s); kept as a dead letter: %s", row.kind,
                  row.event_id, what, reason[:200])

    @staticmethod
    def _order_request(row: Row) -> tuple[str, bytes, str]:
        """Path, body and order id of one order row: the order itself, or a status change."""
        if row.kind == "order":
            return ORDERS_PATH, row.payload.encode(), str(json.loads(row.payload)["order_id"])
        change = json.loads(row.payload)
        order_id = change.pop("order_id")
        return order_status_path(order_id), json.dumps(change).encode(), order_id

    def drain_once(self) -> int:
        """One cycle: housekeeping if due, orders, then one batch of events."""
        if self.clock() - self._last_housekeeping >= self.housekeeping_interval_s:
            self.housekeeping()
        return self.send_orders() + self.send_events()

    def backoff_delay(self) -> float:
        """Full-jitter exponential backoff for the current failure streak."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** min(self.failures, 30))
        return self.rng.uniform(0, ceiling)

    def run(self, stop: threading.Event, idle_s: float = 0.2) -> None:
        """Forward until ``stop`` is set: drain while there is work, back off on failure."""
        while not stop.is_set():
            try:
                moved = self.drain_once()
            except DeliveryError as exc:
                self.failures += 1
                self.counters["failures_total"] += 1
                delay = self.backoff_delay()
                log.warning("forwarding failed (%s); retry %d in %.2fs", exc, self.failures,
                            delay)
                stop.wait(delay)
                continue
            self.failures = 0
            if not moved:
                stop.wait(idle_s)

    # -- retention and disk budget ------------------------------------------------------------

    def housekeeping(self) -> None:
        """Apply the retention policy and check the disk budget (see module docstring)."""
        now = self.clock()
        self._last_housekeeping = now
        kinds = ",".join(f"'{k}'" for k in EXPIRABLE_KINDS)
        with self._lock:
            self._conn.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?",
                               (now - self.sent_retention_s,))
            expired = self._conn.execute(
                f"DELETE FROM outbox WHERE sent_at IS NULL AND kind IN ({kinds}) "
                f"AND created_at < ?", (now - self.tracking_max_age_s,)).rowcount
        if expired:
            self.counters["expired_total"] += expired
            log.critical("retention: expired %d unsent interest/presence events older than "
                         "%.0f days (central unreachable too long)", expired,
                         self.tracking_max_age_s / DAY_S)
        self._check_budget(now)

    def _check_budget(self, now: float) -> None:
        used = self.disk_bytes()
        if used <= self.disk_budget_bytes:
            return
        if self.shed_tracking_over_budget:
            self._shed()
            used = self.disk_bytes()
        if now - self._last_alarm >= self.alarm_interval_s:
            self._last_alarm = now
            log.critical("OUTBOX OVER DISK BUDGET: %d bytes used > budget %d; backlog %d; "
                         "central unreachable? orders are kept regardless", used,
                         self.disk_budget_bytes, self.metrics()["backlog"])

    def _shed(self) -> None:
        for kind in EXPIRABLE_KINDS:
            while self.disk_bytes() > self.disk_budget_bytes:
                with self._lock:
                    gone = self._conn.execute(
                        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE "
                        "sent_at IS NULL AND kind = ? AND created_at < ? ORDER BY seq "
                        "LIMIT 5000)", (kind, self.clock() - self.shed_min_age_s)).rowcount
                if not gone:
                    break
                self.counters["shed_total"] += gone
                log.critical("disk budget: shed %d oldest unsent %s events", gone, kind)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge.forwarder --db PATH --central URL``; token in ``$VITRINE_STORE_TOKEN``."""
    parser = argparse.ArgumentParser(description="Drain the edge outbox to central.")
    parser.add_argument("--db", required=True)
    parser.add_argument("--central", required=True)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--backoff-cap", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    token = os.environ.get("VITRINE_STORE_TOKEN")
    if not token:
        parser.error("set VITRINE_STORE_TOKEN to the store's central credential")
    fwd = Forwarder(args.db, args.central, token, args.batch_size,
                    backoff_cap_s=args.backoff_cap)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        fwd.run(stop)
    finally:
        fwd.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
