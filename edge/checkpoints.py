"""WAL checkpoints beside the writer, not inside its COMMITs.

SQLite's default (``wal_autocheckpoint`` 1,000 pages) makes the connection that
commits copy the WAL back into the database every few batches: at ingest rates
that is a large share of the writer's COMMIT time, while every message of the
batch waits (``docs/benchmarks.md``, "What's next for ingest"). In the writer
process a :class:`Checkpointer` thread runs PASSIVE checkpoints on its own
connection instead: SQLite releases the GIL while it copies, and a PASSIVE
checkpoint never blocks the writer (it copies what is committed, and stops where
the writer is appending).

Under continuous writes the WAL cannot restart from its beginning while frames
are still being appended behind the checkpoint, so the writer keeps an
auto-checkpoint of its own, much higher (:data:`WRITER_AUTOCHECKPOINT_PAGES`):
when it fires, the thread has already copied nearly everything, the writer's
checkpoint is short, and the WAL restarts. The WAL stays bounded either way;
crash safety is SQLite's, unchanged.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger("vitrine.edge.checkpoints")
#: The writer's own auto-checkpoint, a safety net: ~40 MB of WAL at 4 KiB pages.
WRITER_AUTOCHECKPOINT_PAGES = 10_000
#: How often the thread checkpoints (a no-op when nothing was committed since).
INTERVAL_S = 0.25
#: At most one warning per this many seconds while checkpoints fail (a full disk).
WARN_EVERY_S = 60.0


class Checkpointer:
    """A thread that copies the WAL into the database, PASSIVE, every :data:`INTERVAL_S`."""

    def __init__(self, db_path: str | Path, interval_s: float = INTERVAL_S):
        self.interval_s = interval_s
        self._conn = sqlite3.connect(str(db_path), check_same_thread=False,
                                     isolation_level=None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-checkpoints", daemon=True)
        self._warned_at = float("-inf")
        #: Checkpoints that ran (for tests).
        self.runs = 0

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.close()

    def checkpoint(self) -> None:
        """One PASSIVE checkpoint now (what the thread does every interval)."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # a full disk, an I/O error: the writer's net still holds
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY_S:
                self._warned_at = now
                log.warning("WAL checkpoint failed (%s); the writer's own checkpoint still"
                            " bounds the WAL", exc)
            return
        self.runs += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.checkpoint()
