"""Disk and database faults (issue 6, section 3), against the real ``python -m edge``.

Start-up faults give one line naming the file and what to do, a non-zero exit and
no traceback. A full disk (a real, small tmpfs: the tests run as root, as CI does)
makes the edge wait and retry, at start and while running, and loses nothing.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.seed import seed
from edge.startup import open_edge_db

from .conftest import LAYOUT, query, wait_until
from .edge_process import start_edge, wait_edge_online


def run_edge(edge_config, db_path: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "VITRINE_STORE_ID": edge_config.store_id,
           "VITRINE_DB_PATH": str(db_path), "VITRINE_MQTT_PORT": str(edge_config.mqtt_port),
           "VITRINE_MQTT_PASSWORD": edge_config.mqtt_password, "VITRINE_PANEL_PORT": "0"}
    return subprocess.run([sys.executable, "-m", "edge", "--metrics-every", "0"], env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_clear_line(proc: subprocess.CompletedProcess, *words: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if "ERROR" in line]
    assert len(errors) == 1, out
    for word in words:
        assert word in errors[0], errors[0]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A small real file system of its own (4 MiB), so that it can really be filled."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; return the filler to delete."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for block in (65536, 1):
            try:
                while fh.write(b"\0" * block):
                    pass
            except OSError:
                pass
    return filler


def test_not_a_database(edge_config, tmp_path):
    db = tmp_path / "edge.db"
    db.write_bytes(b"this is a spreadsheet, not a database" * 100)
    assert_one_clear_line(run_edge(edge_config, db), str(db), "not an SQLite database",
                          "vitrine edge restore")


def make_db(edge_config, path: Path, events: int = 3000) -> None:
    """A real edge database with its tables and some events, at ``path``."""
    db = open_edge_db(edge_config)
    seed(db, LAYOUT)
    db.conn.executemany("INSERT INTO events (device_id, msg_id, channel, received_at, payload)"
                        " VALUES ('nfc-01', ?, 'nfc', ?, '{}')",
                        [(f"m{i}", time.time()) for i in range(events)])
    db.conn.execute("VACUUM INTO ?", (str(path),))
    db.conn.close()


def test_malformed_database(edge_config, tmp_path):
    db = tmp_path / "copy" / "edge.db"
    db.parent.mkdir()
    make_db(edge_config, db)
    # Scribble over the pages after the schema (an outbox page, an index page...).
    page = 4096
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        for offset in range(2 * page, size, 3 * page):
            fh.seek(offset)
            fh.write(os.urandom(page))
    assert_one_clear_line(run_edge(edge_config, db), str(db), "corrupt", "restore")


def test_missing_directory(edge_config, tmp_path):
    db = tmp_path / "not-mounted" / "edge.db"
    assert_one_clear_line(run_edge(edge_config, db), str(db), "does not exist")
    assert not db.parent.exists()  # not silently created on the wrong disk


def test_read_only_database(edge_config, tmpfs):
    db = tmpfs / "edge.db"
    make_db(edge_config, db, events=10)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    assert_one_clear_line(run_edge(edge_config, db), str(db), "read-only")


@pytest.mark.allow_errors
def test_a_full_disk_at_start_and_while_running_loses_nothing(edge_config, broker, device,
                                                             tmpfs, tmp_path):
    db = tmpfs / "edge.db"
    cfg = edge_config
    cfg.db_path = db
    log = tmp_path / "edge.log"
    # A first run creates and seeds the database, then the edge stops.
    proc = start_edge(cfg, log)
    wait_edge_online(broker, time.time() - 5)
    proc.terminate()
    assert proc.wait(20) == 0
    dev = device("nfc-01")
    dev.send("nfc", {"uid": "04a1b2c3d4e5f6"}, msg_id="while-down")
    filler = fill(tmpfs)
    try:
        after = time.time()
        # restarted by its supervisor on a full disk (retrying every 0.5 s, not 5 s)
        proc = start_edge(cfg, log, startup_retry_s="0.5")
        for i in range(5):
            dev.send("nfc", {"uid": "04a1b2c3d4e5f6"}, msg_id=f"while-full-{i}")
        # waits, does not crash-loop: it has retried twice and is still the same process
        wait_until(lambda: "(attempt 3)" in log.read_text() or proc.poll() is not None,
                   timeout=30)
        assert proc.poll() is None, log.read_text()[-3000:]
        text = log.read_text()
        assert "the disk is full" in text, text[-3000:]  # at start: waits, retries
        assert "Traceback" not in text
    finally:
        filler.unlink()
    try:
        wait_edge_online(broker, after)
        wait_until(lambda: query(db, "SELECT count(*) FROM events")[0][0] == 6, timeout=30)
        # Full again while running: the batch is retried, nothing acknowledged, nothing lost.
        at = log.stat().st_size
        filler = fill(tmpfs)
        for i in range(5):
            dev.send("nfc", {"uid": "04a1b2c3d4e5f6"}, msg_id=f"running-full-{i}")
        # the batch failed to commit and was retried (twice), and the edge is still up
        wait_until(lambda: log.read_bytes()[at:].count(b"commit failed") >= 3
                   or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, log.read_text()[-3000:]
        filler.unlink()
        wait_until(lambda: query(db, "SELECT count(*) FROM events")[0][0] == 11, timeout=30)
    finally:
        proc.terminate()
        proc.wait(20)


def test_seeding_an_unchanged_layout_writes_nothing(edge_config):
    db = open_edge_db(edge_config)
    try:
        first = seed(db, LAYOUT)
        before = db.conn.total_changes
        second = seed(db, LAYOUT)
        assert first["changed"] > 0 and second["changed"] == 0
        assert db.conn.total_changes == before  # not one row written
    finally:
        db.conn.close()


def test_a_refused_commit_leaves_no_transaction_open_and_keeps_its_error(tmp_path):
    """edge.db.immediate: the COMMIT's own failure is the error raised, and the connection
    can start the next transaction (a deferred foreign key makes COMMIT fail and leaves
    the transaction open, the other case from a full disk, which SQLite rolls back)."""
    from edge.db import immediate

    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE child (pid INTEGER REFERENCES parent (id) "
                 "DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), immediate(conn):
        conn.execute("INSERT INTO child VALUES (42)")
    assert not conn.in_transaction
    with immediate(conn):
        conn.execute("INSERT INTO parent VALUES (42)")
        conn.execute("INSERT INTO child VALUES (42)")
    assert conn.execute("SELECT count(*) FROM child").fetchone() == (1,)
