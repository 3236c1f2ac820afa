"""Device registry: who is online, what firmware, who went silent.

Fed by the retained birth/last-will messages (``devices/{id}/state``) and by
every accepted message (last_seen). A device that misses its heartbeat for
``stale_factor`` periods is marked stale even if no last will arrived (a hung
device keeps its TCP connection open, so the broker never sends its will).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

log = logging.getLogger("vitrine.edge.registry")


class Registry:
    def __init__(self, stale_factor: float = 2.5, default_heartbeat_s: float = 30.0):
        self.stale_factor = stale_factor
        self.default_heartbeat_s = default_heartbeat_s
        #: last_seen updates are buffered and flushed once per batch: one UPDATE
        #: per device per batch instead of one per message.
        self._seen: dict[str, float] = {}

    def on_state(self, conn: sqlite3.Connection, device_id: str, msg: dict[str, Any],
                 now: float) -> None:
        state = msg["state"]
        conn.execute(
            "UPDATE devices SET state = ?, kind = coalesce(?, kind), fw = coalesce(?, fw),"
            " heartbeat_s = coalesce(?, heartbeat_s), last_seen = ?, stale = 0"
            " WHERE device_id = ?",
            (state, msg.get("kind"), msg.get("fw"), msg.get("heartbeat_s"), now, device_id))
        log.info("device %s is %s (fw %s)", device_id, state, msg.get("fw", "?"))

    def touch(self, device_id: str, now: float) -> None:
        self._seen[device_id] = max(now, self._seen.get(device_id, 0.0))

    def discard(self) -> None:
        """Forget buffered last_seen updates (their messages were rolled back)."""
        self._seen.clear()

    def flush(self, conn: sqlite3.Connection) -> None:
        if self._seen:
            conn.executemany(
                "UPDATE devices SET last_seen = max(coalesce(last_seen, 0), ?), stale = 0,"
                " state = CASE WHEN state = 'unknown' THEN 'online' ELSE state END"
                " WHERE device_id = ?",
                [(t, d) for d, t in self._seen.items()])
            self._seen.clear()

    def mark_stale(self, conn: sqlite3.Connection, now: float) -> list[str]:
        """Mark online devices silent past their heartbeat; return the newly stale ids."""
        rows = conn.execute(
            "SELECT device_id FROM devices WHERE stale = 0 AND state = 'online'"
            " AND last_seen IS NOT NULL AND ? - last_seen > coalesce(heartbeat_s, ?) * ?",
            (now, self.default_heartbeat_s, self.stale_factor)).fetchall()
        stale = [r[0] for r in rows]
        if stale:
            conn.executemany("UPDATE devices SET stale = 1 WHERE device_id = ?",
                             [(d,) for d in stale])
            for d in stale:
                log.warning("device %s is stale: no message for %.0f heartbeats", d,
                            self.stale_factor)
        return stale
