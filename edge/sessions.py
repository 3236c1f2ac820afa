"""Shopper sessions at a device: who is standing at this reader right now.

A shelf reader cannot tell shoppers apart, so a session is a burst of activity
at one device: it ends after ``gap_s`` seconds of silence. A loyalty tap or app
QR inside a session identifies it; taps before and after then belong to that
customer (the central profile merges the anonymous part by ``session_id``).
Times are the edge's receive times: device clocks are skewed.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass


@dataclass(slots=True)
class Session:
    session_id: str
    device_id: str
    customer_id: str | None
    started_at: float
    last_at: float


class Sessions:
    def __init__(self, conn: sqlite3.Connection, gap_s: float):
        self.gap_s = gap_s
        self._by_device: dict[str, Session] = {}
        #: Sessions whose last_at moved: written once per batch by :meth:`flush`.
        self._dirty: dict[str, Session] = {}
        self.reload(conn)

    def reload(self, conn: sqlite3.Connection) -> None:
        """Rebuild the in-memory view from committed rows (start, or after a failed commit)."""
        self._by_device = {}
        self._dirty = {}
        rows = conn.execute(
            "SELECT session_id, device_id, customer_id, started_at, last_at FROM sessions "
            "WHERE rowid IN (SELECT max(rowid) FROM sessions GROUP BY device_id)")
        for row in rows:
            self._by_device[row[1]] = Session(*row)

    def touch(self, conn: sqlite3.Connection, device_id: str, now: float) -> Session:
        """The current session at ``device_id``, opening a new one after a gap."""
        s = self._by_device.get(device_id)
        if s is None or now - s.last_at > self.gap_s or now < s.started_at - self.gap_s:
            s = Session(str(uuid.uuid4()), device_id, None, now, now)
            self._by_device[device_id] = s
            conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                         (s.session_id, device_id, None, now, now))
        else:
            s.last_at = max(s.last_at, now)
            self._dirty[s.session_id] = s
        return s

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write the batch's last_at updates (one statement per batch, not per message)."""
        if self._dirty:
            conn.executemany("UPDATE sessions SET last_at = ? WHERE session_id = ?",
                             [(s.last_at, sid) for sid, s in self._dirty.items()])
            self._dirty.clear()

    def end(self, conn: sqlite3.Connection, device_id: str,
            now: float) -> tuple[str | None, Session]:
        """Close the device's session now ("I'm done", kiosk timeout).

        A fresh anonymous session replaces it (recorded, so a restart reloads it):
        the next shopper's reads join that one and are never attributed to the
        customer who just left. Returns the id of the session ended (None if the
        device had none) and the new session.
        """
        old = self._by_device.get(device_id)
        fresh = Session(str(uuid.uuid4()), device_id, None, now, now)
        self._by_device[device_id] = fresh
        if old is not None:
            self._dirty.pop(old.session_id, None)
            conn.execute("UPDATE sessions SET last_at = ? WHERE session_id = ?",
                         (old.last_at, old.session_id))
        conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                     (fresh.session_id, device_id, None, now, now))
        return (old.session_id if old is not None else None), fresh

    def identify(self, conn: sqlite3.Connection, session: Session, customer_id: str) -> Session:
        """Attach a customer; a different customer at the same device starts a new session."""
        if session.customer_id not in (None, customer_id):
            session = Session(str(uuid.uuid4()), session.device_id, customer_id,
                              session.last_at, session.last_at)
            self._by_device[session.device_id] = session
            conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                         (session.session_id, session.device_id, customer_id,
                          session.started_at, session.last_at))
            return session
        session.customer_id = customer_id
        conn.execute("UPDATE sessions SET customer_id = ? WHERE session_id = ?",
                     (customer_id, session.session_id))
        return session
