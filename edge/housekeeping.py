"""Periodic upkeep of the writer's database and caches, between batches.

Shared by the in-process writer thread and the writer process
(:mod:`edge.writer_proc`): whoever owns the SQLite write connection runs it.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field

from . import analytics
from .catalogue import Catalogue
from .db import immediate
from .identity import Identifier
from .pipeline import Pipeline
from .registry import Registry
from .retention import Retention

log = logging.getLogger("vitrine.edge")


@dataclass
class Upkeep:
    """What housekeeping found: gauges to publish, stale transitions to count."""

    gauges: dict[str, float] = field(default_factory=dict)
    stale_transitions: int = 0
    catalogue_reloaded: bool = False


class Housekeeper:
    def __init__(self, conn: sqlite3.Connection, catalogue: Catalogue, registry: Registry,
                 pipeline: Pipeline, retention: Retention | None = None,
                 retention_every_s: float = 60.0):
        self.retention = retention
        self.retention_every_s = retention_every_s
        self._next_retention = 0.0
        self.conn = conn
        self.catalogue = catalogue
        self.registry = registry
        self.pipeline = pipeline
        self._data_version = self._read_data_version()

    def _read_data_version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def run(self, now: float, reload: bool) -> Upkeep:
        """Refresh caches if another connection wrote, mark stale devices, expire nonces.

        ``reload``: the sync client applied a feed or an erasure: reload the whole
        catalogue and the sessions, not just the device list.
        """
        conn = self.conn
        upkeep = Upkeep()
        version = self._read_data_version()
        if version != self._data_version or reload:
            self._data_version = version
            if reload:
                self.catalogue.reload()
                self.pipeline.reload_state()
                upkeep.catalogue_reloaded = True
            else:
                self.catalogue.reload_devices()
        try:
            with immediate(conn):
                stale = self.registry.mark_stale(conn, now)
                Identifier.expire_nonces(conn, now)
                # Before any outbox cleanup: what is counted here outlives the rows.
                analytics.roll_up(conn)
                analytics.record_latest(conn)
                analytics.record_states(conn, now)
        except sqlite3.Error as exc:  # e.g. a full disk: the next round tries again
            log.critical("housekeeping failed: %s", exc)
            return upkeep
        upkeep.stale_transitions = len(stale)
        (n,) = conn.execute("SELECT count(*) FROM devices WHERE stale = 1").fetchone()
        upkeep.gauges["stale_devices"] = n
        # No count of the unsent outbox here: it reads every unsent row (27 ms at 900,000,
        # every stale_check_s, with ingest waiting). The panel's operations page and the
        # forwarder's metrics count it on their own read connections.
        if self.retention is not None and now >= self._next_retention:
            self._next_retention = now + self.retention_every_s
            self._retain(upkeep)
        return upkeep

    def _retain(self, upkeep: Upkeep) -> None:
        assert self.retention is not None
        try:
            report = self.retention.run()
        except sqlite3.Error as exc:  # a full disk: the next run tries again
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            log.critical("retention failed: %s", exc)
            return
        gone = report.deleted + report.shed
        if gone["quarantine"]:
            self.pipeline.reload_quarantine_counts()
        if gone["sessions"]:
            self.pipeline.reload_state()
        upkeep.gauges["db_used_bytes"] = report.used_bytes
        upkeep.gauges["db_over_budget"] = int(report.over_budget)
        for table, n in gone.items():
            if n:
                upkeep.gauges[f"retention_deleted.{table}"] = n
