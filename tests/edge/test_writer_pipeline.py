"""The writer process takes the next batch while the parent acks the last (edge/writer_proc.py).

A real writer process on a real SQLite file. What must hold with two batches at
the writer at once: a batch refused by the database takes the batches sent
behind it with it (none of them is committed out of order), the parent gets
them all back to retry, and after the retry each message is stored exactly
once, in the order received.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from contract.topics import device_topic
from edge.config import load_config
from edge.db import connect, migrate
from edge.inbound import Inbound
from edge.metrics import Metrics
from edge.pipeline import BatchResult
from edge.seed import seed
from edge.writer_proc import WriterProcess

from .conftest import GTIN, LAYOUT

STORE = LAYOUT["store_id"]


@pytest.fixture
def writer(tmp_path: Path):
    cfg = load_config(env={}, store_id=STORE, db_path=tmp_path / "edge.db",
                      mqtt_password="unused", panel_port=0, sqlite_busy_timeout_s=0.05)
    db = connect(cfg.db_path)
    migrate(db)
    seed(db, LAYOUT)
    db.conn.close()
    metrics = Metrics()
    w = WriterProcess(cfg, metrics)
    try:
        yield w, cfg.db_path, metrics
    finally:
        w.stop()


@pytest.fixture
def writer_small_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A writer whose pipe keeps the kernel's smallest buffers (~4 KiB): every batch
    and every reply is bigger than what one side can write before the other reads."""
    import edge.writer_proc as writer_proc

    monkeypatch.setattr(writer_proc, "PIPE_BUFFER_BYTES", 1)  # the kernel rounds it up
    cfg = load_config(env={}, store_id=STORE, db_path=tmp_path / "edge.db",
                      mqtt_password="unused", panel_port=0)
    db = connect(cfg.db_path)
    migrate(db)
    seed(db, LAYOUT)
    db.conn.close()
    w = WriterProcess(cfg, Metrics())
    try:
        yield w, cfg.db_path
    finally:
        if w.process.is_alive() and not w.outstanding:
            w.stop()
        else:
            w.process.kill()


def scans(first: int, n: int) -> list[Inbound]:
    topic = device_topic(STORE, "qr-01", "qr")
    return [Inbound(i, 1, topic, json.dumps({
        "msg_id": f"m{i:04d}", "ts": time.time(),
        "text": f"https://id.gs1.org/01/{GTIN}?n={i}"}).encode(), time.time())
        for i in range(first, first + n)]


def stored(db_path: Path) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute("SELECT msg_id FROM events ORDER BY id")]
    finally:
        conn.close()


def test_two_batches_at_once_commit_in_order(writer):
    w, db_path, metrics = writer
    a, b = scans(0, 30), scans(30, 30)
    w.submit_batch(a)
    w.submit_batch(b)
    assert w.outstanding == 2
    ra, rb = w.collect_batch(), w.collect_batch()
    assert isinstance(ra, BatchResult) and isinstance(rb, BatchResult)
    assert ra.counts["accepted"] == 30 and rb.counts["accepted"] == 30
    assert ra.done == {"qr-01": [f"m{i:04d}" for i in range(30)]}
    assert stored(db_path) == [f"m{i:04d}" for i in range(60)]
    snap = metrics.snapshot()  # the writer's own time on each batch
    assert snap["counters"]["batches"] == 2 and snap["counters"]["batched_messages"] == 60
    assert 0 < snap["commit_ms_avg"] <= snap["commit_ms_max"]


@pytest.mark.allow_errors  # the writer logs the refused commit
def test_a_refused_batch_takes_the_ones_behind_it_back_to_the_parent(writer):
    w, db_path, _metrics = writer
    lock = sqlite3.connect(db_path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # nobody else can write: the next commit is refused
    a, b, c = scans(0, 20), scans(20, 20), scans(40, 20)
    w.submit_batch(a)
    w.submit_batch(b)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        w.collect_batch()
    lock.execute("ROLLBACK")  # the database is writable again, before b reaches the writer
    # b was sent behind a: the writer must not commit it ahead of a's retry.
    with pytest.raises(sqlite3.OperationalError, match="not tried"):
        w.collect_batch()
    w.recover()
    assert stored(db_path) == []
    w.submit_batch(a)
    w.submit_batch(b)
    w.submit_batch(c)
    results = [w.collect_batch() for _ in range(3)]
    assert [r.counts["accepted"] for r in results] == [20, 20, 20]
    assert stored(db_path) == [f"m{i:04d}" for i in range(60)]
    lock.close()


@pytest.mark.allow_errors
def test_recover_with_nothing_behind_leaves_the_writer_ready_for_the_retry(writer):
    w, db_path, _metrics = writer
    lock = sqlite3.connect(db_path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    w.submit_batch(scans(0, 5))
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        w.collect_batch()
    lock.execute("ROLLBACK")
    lock.close()
    w.recover()
    assert w.outstanding == 0
    w.submit_batch(scans(0, 5))
    assert w.collect_batch().counts["accepted"] == 5
    assert stored(db_path) == [f"m{i:04d}" for i in range(5)]


def test_no_deadlock_when_a_batch_and_a_reply_overflow_the_pipe_at_once(writer_small_pipe):
    """The parent sends the next batch while the writer sends its reply, both larger than
    the socket buffers (a machine where they cannot be widened): neither may wait forever."""
    w, db_path = writer_small_pipe
    done = threading.Event()

    def run() -> None:
        w.submit_batch(scans(0, 1000))
        w.submit_batch(scans(1000, 1000))  # blocks until the writer reads it
        w.collect_batch()
        w.collect_batch()
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert done.wait(30), "parent and writer each blocked in send()"
    assert len(stored(db_path)) == 2000
