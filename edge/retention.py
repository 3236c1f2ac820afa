"""Retention and the disk budget of the edge database, on every edge.

The writer's housekeeping runs :meth:`Retention.run` every ``retention_check_s``
whether or not the store forwards to central (a standalone store's disk fills
just the same). Deletions go in chunks of :data:`CHUNK` rows, each its own short
transaction, at most :data:`MAX_CHUNKS` per run, so that ingest never waits
long behind them; what is left is done at the next run.

Retention by age (0 = keep forever):

* ``events`` older than ``events_retention_days`` (90), ``security_events`` too;
* ``quarantine`` rows and overflow counts older than ``quarantine_retention_days`` (30);
* ``sessions`` that ended more than ``sessions_retention_days`` (30) ago;
* ``outbox``: sent rows 3 days after they were sent; on a standalone edge (no
  ``central_url``), which never sends them, any row older than the events' retention.

Before a row of events, quarantine or sessions is deleted it is counted into
a daily roll-up (``event_daily``, ``quarantine_daily``, ``session_daily``), so
the panel's counts and analytics keep their history.

Disk budget: when the database's **live** pages (page count minus free pages,
i.e. what deleting rows gives back) exceed ``disk_budget_bytes``, the oldest
rows are shed in this order until it is under budget: sent outbox rows,
quarantine, events, ended sessions, each rolled up first, and never a row
younger than :data:`SHED_FLOOR_S` (a day). Unsent outbox rows are never shed
here (orders, and events central has not seen: the forwarder's own opt-in
``shed_tracking_over_budget`` decides about tracking events). If only rows it
must keep remain, it says so once per :data:`ALARM_INTERVAL_S`, CRITICAL, with
the bytes of each table.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .db import immediate

log = logging.getLogger("vitrine.edge.retention")
DAY_S = 86_400.0
CHUNK = 5000
MAX_CHUNKS = 20
SHED_FLOOR_S = DAY_S
SENT_RETENTION_S = 3 * DAY_S
ALARM_INTERVAL_S = 300.0


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


@dataclass
class RetentionPolicy:
    events_days: float = 90.0
    quarantine_days: float = 30.0
    sessions_days: float = 30.0
    disk_budget_bytes: int = 1 << 30
    #: No central to forward to: outbox rows are never sent, so they expire by age.
    standalone: bool = False


@dataclass
class RetentionReport:
    deleted: Counter[str] = field(default_factory=Counter)
    shed: Counter[str] = field(default_factory=Counter)
    used_bytes: int = 0
    over_budget: bool = False


class Retention:
    def __init__(self, conn: sqlite3.Connection, policy: RetentionPolicy,
                 clock: Callable[[], float] = time.time):
        self.conn = conn
        self.policy = policy
        self.clock = clock
        self._last_alarm = float("-inf")

    # -- measuring ---------------------------------------------------------------------------
    def used_bytes(self) -> int:
        """Bytes of live pages: what deleting rows can give back (free pages excluded)."""
        c = self.conn
        page = c.execute("PRAGMA page_size").fetchone()[0]
        pages = c.execute("PRAGMA page_count").fetchone()[0]
        free = c.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * page

    def table_bytes(self) -> dict[str, int]:
        """Bytes per table and index (``dbstat``), or {} where SQLite lacks it."""
        try:
            return dict(self.conn.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"))
        except sqlite3.Error:
            return {}

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> RetentionReport:
        now = self.clock()
        p = self.policy
        report = RetentionReport()
        budget = MAX_CHUNKS
        if p.events_days > 0:
            cutoff = now - p.events_days * DAY_S
            budget -= self._expire_events(cutoff, report.deleted, budget)
            report.deleted["security_events"] += self._delete(
                "DELETE FROM security_events WHERE received_at < ?", (cutoff,))
        if p.quarantine_days > 0:
            cutoff = now - p.quarantine_days * DAY_S
            budget -= self._expire_quarantine(cutoff, report.deleted, budget)
            report.deleted["quarantine_overflow"] += self._delete(
                "DELETE FROM quarantine_overflow WHERE last_at < ?", (cutoff,))
        if p.sessions_days > 0:
            self._expire_sessions(now - p.sessions_days * DAY_S, report.deleted)
        report.deleted["outbox"] += self._delete(
            "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?",
            (now - SENT_RETENTION_S,))
        if p.standalone and p.events_days > 0:
            report.deleted["outbox"] += self._expire_outbox(now - p.events_days * DAY_S,
                                                            max(1, budget))
        report.used_bytes = self.used_bytes()
        if p.disk_budget_bytes and report.used_bytes > p.disk_budget_bytes:
            self._shed(now, report)
        return report

    def _delete(self, sql: str, args: tuple[object, ...]) -> int:
        c = self.conn
        with immediate(c):
            return c.execute(sql, args).rowcount

    def _expire_events(self, cutoff: float, deleted: Counter[str], chunks: int) -> int:
        """Roll up and delete events received before ``cutoff``, oldest first."""
        return self._expire_rolled_up(
            "events", "device_id, channel",
            "INSERT INTO event_daily (day, device_id, channel, n) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (day, device_id, channel) DO UPDATE SET n = n + excluded.n",
            cutoff, deleted, chunks)

    def _expire_quarantine(self, cutoff: float, deleted: Counter[str], chunks: int) -> int:
        return self._expire_rolled_up(
            "quarantine", "reason",
            "INSERT INTO quarantine_daily (day, reason, n) VALUES (?, ?, ?)"
            " ON CONFLICT (day, reason) DO UPDATE SET n = n + excluded.n",
            cutoff, deleted, chunks)

    def _expire_rolled_up(self, table: str, keys: str, rollup_sql: str, cutoff: float,
                          deleted: Counter[str], chunks: int) -> int:
        """Delete ``table`` rows received before ``cutoff`` (oldest first, at most ``chunks``
        chunks), counting them per day and ``keys`` with ``rollup_sql`` in the same
        transaction; return the chunks used."""
        used = 0
        while used < chunks:
            old = self._oldest(f"SELECT id, received_at, {keys} FROM {table}"
                               " ORDER BY id LIMIT ?", cutoff)
            if not old:
                break
            used += 1
            daily = Counter((_day(r[1]), *r[2:]) for r in old)
            self._in_tx((rollup_sql, [(*k, n) for k, n in daily.items()]),
                        (f"DELETE FROM {table} WHERE id <= ?", [(old[-1][0],)]))
            deleted[table] += len(old)
            if len(old) < CHUNK:  # a young row, or the end of the table
                break
        return used

    def _expire_outbox(self, cutoff: float, chunks: int) -> int:
        """Delete outbox rows created before ``cutoff``, oldest first by ``seq``; rows deleted.

        In ``seq`` order and stopping at the first row young enough, like events: a
        ``created_at < cutoff`` scan would read the whole outbox (no index on it) in
        the writer, every retention run: 160-370 ms at 900,000 rows, with ingest waiting.
        """
        deleted = 0
        for _ in range(chunks):
            old = self._oldest("SELECT seq, created_at FROM outbox ORDER BY seq LIMIT ?", cutoff)
            if not old:
                break
            deleted += self._delete("DELETE FROM outbox WHERE seq <= ?", (old[-1][0],))
            if len(old) < CHUNK:  # a young row, or the end of the outbox
                break
        return deleted

    def _oldest(self, sql: str, cutoff: float) -> list[tuple[Any, ...]]:
        """The first rows of ``sql`` (ordered, ``LIMIT ?`` = :data:`CHUNK`) whose second
        column is before ``cutoff``, read only up to the first row that is not: when
        nothing is old, one row is read, however large the table."""
        old = []
        cur = self.conn.execute(sql, (CHUNK,))
        for row in cur:
            if row[1] >= cutoff:
                break
            old.append(row)
        cur.close()  # no statement left open when the deleting transaction starts
        return old

    def _expire_sessions(self, cutoff: float, deleted: Counter[str]) -> None:
        rows = self.conn.execute(
            "SELECT started_at, device_id, customer_id IS NOT NULL FROM sessions"
            " WHERE last_at < ? LIMIT ?", (cutoff, CHUNK * MAX_CHUNKS)).fetchall()
        if not rows:
            return
        daily: Counter[tuple[str, str]] = Counter()
        identified: Counter[tuple[str, str]] = Counter()
        for started, device, ident in rows:
            daily[(_day(started), device)] += 1
            identified[(_day(started), device)] += int(ident)
        self._in_tx(
            ("INSERT INTO session_daily (day, device_id, sessions, identified) VALUES"
             " (?, ?, ?, ?) ON CONFLICT (day, device_id) DO UPDATE SET"
             " sessions = sessions + excluded.sessions,"
             " identified = identified + excluded.identified",
             [(*k, n, identified[k]) for k, n in daily.items()]),
            ("DELETE FROM sessions WHERE last_at < ?", [(cutoff,)]))
        deleted["sessions"] += len(rows)

    def _in_tx(self, *steps: tuple[str, list[tuple[object, ...]]]) -> None:
        c = self.conn
        with immediate(c):
            for sql, rows in steps:
                c.executemany(sql, rows)

    # -- disk budget ---------------------------------------------------------------------------
    def _shed(self, now: float, report: RetentionReport) -> None:
        budget = self.policy.disk_budget_bytes
        floor = now - SHED_FLOOR_S
        steps: list[tuple[str, Callable[[], int]]] = [
            ("outbox_sent", lambda: self._delete(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE sent_at IS NOT"
                " NULL ORDER BY seq LIMIT ?)", (CHUNK,))),
            ("quarantine", lambda: self._shed_by_age(self._expire_quarantine, floor)),
            ("events", lambda: self._shed_by_age(self._expire_events, floor)),
            ("sessions", lambda: self._shed_sessions(floor)),
        ]
        used = report.used_bytes
        for name, step in steps:
            for _ in range(MAX_CHUNKS):
                if used <= budget:
                    break
                gone = step()
                if not gone:
                    break
                report.shed[name] += gone
                used = self.used_bytes()
        report.used_bytes = used
        report.over_budget = used > budget
        if report.shed:
            log.warning("disk budget %d bytes: shed %s; now %d bytes", budget,
                        dict(report.shed), used)
        if report.over_budget and now - self._last_alarm >= ALARM_INTERVAL_S:
            self._last_alarm = now
            log.critical("DATABASE OVER DISK BUDGET: %d bytes live > %d, and what is left is"
                         " kept on purpose (rows under a day old, unsent outbox); by table: %s",
                         used, budget, self.table_bytes())

    def _shed_by_age(self, expire: Callable[[float, Counter[str], int], int],
                     floor: float) -> int:
        """One chunk of the oldest rows, none younger than ``floor``; rows removed."""
        counted: Counter[str] = Counter()
        expire(floor, counted, 1)
        return sum(counted.values())

    def _shed_sessions(self, floor: float) -> int:
        counted: Counter[str] = Counter()
        self._expire_sessions(floor, counted)
        return counted["sessions"]
