"""The writer's periodic work must not grow with the database (edge/housekeeping.py).

Housekeeping and retention run in the writer, between batches: ingest waits for
them. A query that reads a whole table there is a stall that grows for months
(the 10-minute soak showed p99 climbing from 8 to 23 ms as the database passed
700 MB: the standalone outbox expiry and the unsent-outbox count read every row).
Measured in SQLite virtual-machine steps (a progress handler), not in time: the
same on a busy machine as on a quiet one.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from edge.config import load_config
from edge.db import connect, migrate
from edge.metrics import Metrics
from edge.seed import seed
from edge.writer_core import build_writer_core

from .conftest import LAYOUT

STEP = 100


def _core(path: Path, rows: int, *, sent: bool):
    cfg = load_config(env={}, store_id=LAYOUT["store_id"], db_path=path,
                      mqtt_password="unused", panel_port=0, retention_check_s=0,
                      events_retention_days=90)  # no central_url: a standalone edge
    db = connect(cfg.db_path)
    migrate(db)
    seed(db, LAYOUT)
    now = time.time()
    payload = json.dumps({"type": "interest", "zone": "shoes", "received_at": now})
    with db.conn:
        db.conn.executemany(
            "INSERT INTO events (device_id, msg_id, channel, received_at, payload)"
            " VALUES ('qr-01', ?, 'qr', ?, '{}')", [(f"m{i}", now) for i in range(rows)])
        db.conn.executemany(
            "INSERT INTO outbox (event_id, kind, customer_key, payload, created_at, sent_at)"
            " VALUES (?, 'interest', 's', ?, ?, ?)",
            [(str(uuid.uuid4()), payload, now, now if sent else None) for _ in range(rows)])
    core = build_writer_core(cfg, db, Metrics())
    core.housekeeper.run(now, False)  # counts the new rows once: work per new row, fine
    return core, db.conn, now


def _steps(conn, fn) -> int:
    n = [0]

    def tick() -> int:
        n[0] += 1
        return 0

    conn.set_progress_handler(tick, STEP)
    try:
        fn()
    finally:
        conn.set_progress_handler(None, STEP)
    return n[0] * STEP


def _housekeeping_steps(tmp_path: Path, rows: int, *, sent: bool) -> int:
    core, conn, now = _core(tmp_path / f"edge-{rows}-{sent}.db", rows, sent=sent)
    try:
        return _steps(conn, lambda: core.housekeeper.run(now + 1, False))
    finally:
        conn.close()


def test_housekeeping_and_retention_do_not_read_the_whole_outbox(tmp_path):
    """Unsent (standalone or central down) and sent rows: 20x the rows, the same work."""
    for sent in (False, True):
        small = _housekeeping_steps(tmp_path, 1_000, sent=sent)
        big = _housekeeping_steps(tmp_path, 20_000, sent=sent)
        assert big < small + 20_000, (sent, small, big)  # a scan: ~10 steps a row
