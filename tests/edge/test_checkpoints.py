"""WAL checkpoints beside the writer (edge/checkpoints.py), on real SQLite files."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from edge.checkpoints import Checkpointer


def _writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # nobody but the thread copies the WAL back
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    return conn


def _write(conn: sqlite3.Connection, batches: int) -> None:
    for _ in range(batches):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t (v) VALUES (?)", [("x" * 200,)] * 100)
        conn.execute("COMMIT")


def test_the_thread_copies_committed_pages_into_the_database(tmp_path):
    path = tmp_path / "db.sqlite"
    conn = _writer(path)
    before = path.stat().st_size
    cp = Checkpointer(path, interval_s=0.02).start()
    try:
        _write(conn, 50)  # ~1 MB committed to the WAL while the thread runs
        deadline = time.monotonic() + 10
        while path.stat().st_size < before + 500_000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.stat().st_size >= before + 500_000  # the pages reached the database
        assert cp.runs > 0
    finally:
        cp.stop()
        conn.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM t").fetchone() == (5000,)
    check.close()


def test_without_it_nothing_is_copied(tmp_path):
    """The control: with auto-checkpoint off and no thread, the database file stays small."""
    path = tmp_path / "db.sqlite"
    conn = _writer(path)
    before = path.stat().st_size
    _write(conn, 50)
    assert path.stat().st_size == before
    conn.close()


def test_a_failing_checkpoint_is_a_warning_not_a_crash(tmp_path, caplog):
    path = tmp_path / "db.sqlite"
    conn = _writer(path)
    cp = Checkpointer(path, interval_s=3600)
    cp._conn.close()  # every statement on it now fails, as on a broken disk
    cp.checkpoint()
    cp.checkpoint()
    assert cp.runs == 0
    assert [r.levelname for r in caplog.records if "checkpoint failed" in r.message] == [
        "WARNING"]  # once, not once per interval
    conn.close()
