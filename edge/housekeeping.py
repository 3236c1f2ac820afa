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
from .identity import Identifier
from .pipeline import Pipeline
from .registry import Registry

log = logging.getLogger("vitrine.edge")


@dataclass
class Upkeep:
    """What housekeeping found: gauges to publish, stale transitions to count."""

    gauges: dict[str, float] = field(default_factory=dict)
    stale_transitions: int = 0
    catalogue_reloaded: bool = False


class Housekeeper:
    def __init__(self, conn: sqlite3.Connection, catalogue: Catalogue, registry: Registry,
                 pipeline: Pipeline):
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
        conn.execute("BEGIN IMMEDIATE")
        try:
            stale = self.registry.mark_stale(conn, now)
            Identifier.expire_nonces(conn, now)
            # Before any outbox cleanup: what is counted here outlives the rows.
            analytics.roll_up(conn)
            analytics.record_latest(conn)
            analytics.record_states(conn, now)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            log.critical("housekeeping failed: %s", exc)
            return upkeep
        upkeep.stale_transitions = len(stale)
        (n,) = conn.execute("SELECT count(*) FROM devices WHERE stale = 1").fetchone()
        upkeep.gauges["stale_devices"] = n
        (backlog,) = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
        upkeep.gauges["outbox_backlog"] = backlog
        return upkeep
