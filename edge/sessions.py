"""Sessions: which reads belong together, and the only ways a read becomes a person's.

A shelf reader, a scanner or a camera is shared by everyone who walks by: it
cannot tell who tapped. So a read is credited to a customer only on evidence
that it is theirs (docs/protocol.md section 9, "Who a read is credited to"):

1. **The read carries their identity.** A valid loyalty token in the same
   message (an app token whose signed ``g`` claim names the product they
   scanned with their own app; a token and a product read together). That
   identification is a one-read session (kind ``read``), closed at once:
   nothing before or after it at that device joins it.
2. **A single-user device inside a session they opened.** At a kiosk
   (:data:`SINGLE_USER_KINDS`), an identification opens a session (kind
   ``kiosk``) that the kiosk's next reads join until it ends: the kiosk says
   the shopper is done or timed out (:meth:`Sessions.end`, the kiosk's
   ``session_end`` request), the kiosk stays silent for ``kiosk_idle_s``
   (walking away), or someone else identifies there. Reads before the
   identification stay anonymous.

Everything else is anonymous (kind ``anonymous``): a burst of reads at one
device that ends after ``gap_s`` seconds of silence, counted for the zone and
the product and never linked to anyone. A session id that carries a customer is
therefore only ever that customer's, so central may link on it and erasure may
delete by it without touching anyone else. Times are the edge's receive times:
device clocks are skewed.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from typing import Literal

#: Device kinds used by one shopper at a time, who opens and ends a session there.
SINGLE_USER_KINDS = frozenset({"kiosk"})

SessionKind = Literal["anonymous", "read", "kiosk"]
#: Why a kiosk session ended (``sessions.end_reason``).
END_REASONS = ("done", "timeout", "idle", "next_customer")


@dataclass(slots=True)
class Session:
    session_id: str
    device_id: str
    customer_id: str | None
    started_at: float
    last_at: float
    kind: SessionKind = "anonymous"


class Sessions:
    def __init__(self, conn: sqlite3.Connection, gap_s: float, kiosk_idle_s: float = 60.0):
        self.gap_s = gap_s
        self.kiosk_idle_s = kiosk_idle_s
        #: The open session of each device (anonymous, or a kiosk's identified one).
        self._by_device: dict[str, Session] = {}
        #: Sessions whose last_at moved: written once per batch by :meth:`flush`.
        self._dirty: dict[str, Session] = {}
        self.reload(conn)

    def reload(self, conn: sqlite3.Connection) -> None:
        """Rebuild the in-memory view from committed rows (start, or after a failed commit)."""
        self._by_device = {}
        self._dirty = {}
        rows = conn.execute(
            "SELECT session_id, device_id, customer_id, started_at, last_at, kind FROM sessions "
            "WHERE rowid IN (SELECT max(rowid) FROM sessions "
            "WHERE kind IN ('anonymous', 'kiosk') GROUP BY device_id) AND ended_at IS NULL")
        for row in rows:
            self._by_device[row[1]] = Session(*row)

    def _open(self, conn: sqlite3.Connection, device_id: str, customer_id: str | None,
              now: float, kind: SessionKind) -> Session:
        s = Session(str(uuid.uuid4()), device_id, customer_id, now, now, kind)
        ended = now if kind == "read" else None
        conn.execute("INSERT INTO sessions (session_id, device_id, customer_id, started_at, "
                     "last_at, kind, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (s.session_id, device_id, customer_id, now, now, kind, ended))
        if kind != "read":
            self._by_device[device_id] = s
        return s

    def _close(self, conn: sqlite3.Connection, s: Session, at: float, reason: str) -> None:
        self._dirty.pop(s.session_id, None)
        conn.execute("UPDATE sessions SET last_at = ?, ended_at = ?, end_reason = ? "
                     "WHERE session_id = ?", (s.last_at, at, reason, s.session_id))
        if self._by_device.get(s.device_id) is s:
            del self._by_device[s.device_id]

    def touch(self, conn: sqlite3.Connection, device_id: str, now: float) -> Session:
        """The session a read at ``device_id`` joins now.

        An anonymous session ends after ``gap_s`` of silence; a kiosk's
        identified one after ``kiosk_idle_s`` (the shopper walked away), after
        which the kiosk's reads are anonymous again.
        """
        s = self._by_device.get(device_id)
        if s is not None and s.kind == "kiosk" and now - s.last_at > self.kiosk_idle_s:
            self._close(conn, s, s.last_at + self.kiosk_idle_s, "idle")
            s = None
        if s is None or now - s.last_at > self.gap_s or now < s.started_at - self.gap_s:
            return self._open(conn, device_id, None, now, "anonymous")
        s.last_at = max(s.last_at, now)
        self._dirty[s.session_id] = s
        return s

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write the batch's last_at updates (one statement per batch, not per message)."""
        if self._dirty:
            conn.executemany("UPDATE sessions SET last_at = ? WHERE session_id = ?",
                             [(s.last_at, sid) for sid, s in self._dirty.items()])
            self._dirty.clear()

    def identify(self, conn: sqlite3.Connection, device_id: str, customer_id: str,
                 now: float, *, single_user: bool) -> Session:
        """The session a valid identification at ``device_id`` creates.

        At a shared device: a one-read session, closed at once; the device's
        anonymous session is left alone. At a single-user device: the kiosk
        session of this customer (the open one if they identify again, else a
        new one, which ends the previous shopper's).
        """
        if not single_user:
            return self._open(conn, device_id, customer_id, now, "read")
        current = self._by_device.get(device_id)
        if current is not None and current.kind == "kiosk":
            if current.customer_id == customer_id and now - current.last_at <= self.kiosk_idle_s:
                current.last_at = max(current.last_at, now)
                self._dirty[current.session_id] = current
                return current
            self._close(conn, current, now, "next_customer")
        return self._open(conn, device_id, customer_id, now, "kiosk")

    def end(self, conn: sqlite3.Connection, device_id: str, now: float,
            reason: str = "done") -> tuple[str | None, Session]:
        """End the identified session at a single-user device: "I'm done" or the kiosk's timeout.

        Returns the id of the session ended (the customer's, or the anonymous
        one if nobody had identified; None if the device had no open session)
        and the new anonymous session its next reads join. Runs inside the
        caller's transaction; the caller answers the kiosk only after the commit
        (the ``session_end`` request op, ``edge/request_ops.py``).
        """
        if reason not in END_REASONS:
            raise ValueError(f"reason must be one of {END_REASONS}, not {reason!r}")
        current = self._by_device.get(device_id)
        ended: str | None = None
        if current is not None:
            ended = current.session_id
            self._close(conn, current, now, reason)
        return ended, self._open(conn, device_id, None, now, "anonymous")
