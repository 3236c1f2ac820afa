"""The window of recently accepted (device_id, msg_id) keys, in memory.

Deduplication is checked here first so that accepted events can be inserted
in bulk (``executemany``) at the end of the batch instead of one INSERT per
message, which halved the cost of that insert. The window is reloaded from the
database at start, so a message redelivered after a crash (always one of the
most recent) is still recognised. The ``UNIQUE(device_id, msg_id)`` constraint
stays as the backstop for anything older than the window: the row is ignored,
and because derived event ids are deterministic, the outbox and central ignore
its derived events too (counted as ``duplicates_beyond_window``).
"""

from __future__ import annotations

import sqlite3
from collections import deque

Key = tuple[str, str]


class RecentKeys:
    def __init__(self, capacity: int = 200_000):
        self.capacity = capacity
        self._order: deque[Key] = deque()
        self._keys: set[Key] = set()

    def load(self, conn: sqlite3.Connection) -> None:
        self._order.clear()
        self._keys.clear()
        rows = conn.execute("SELECT device_id, msg_id FROM events ORDER BY id DESC LIMIT ?",
                            (self.capacity,)).fetchall()
        self.add_all(reversed(rows))

    def __contains__(self, key: Key) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add_all(self, keys) -> None:  # noqa: ANN001 - iterable of Key
        """Record keys of committed events (never before the commit: see module doc)."""
        order, known = self._order, self._keys
        for key in keys:
            if key in known:
                continue
            if len(order) >= self.capacity:
                known.discard(order.popleft())
            order.append(key)
            known.add(key)
