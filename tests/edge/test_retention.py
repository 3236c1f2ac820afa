"""Retention and disk budget on real SQLite, and online backup/restore of the edge database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from edge.node import EdgeNode
from edge.retention import DAY_S, Retention, RetentionPolicy
from edge.startup import open_edge_db

from .conftest import query, wait_until

NOW = 1_800_000_000.0


def fill(conn: sqlite3.Connection, *, events_age_days: float, n: int, payload: int = 800) -> None:
    ts = NOW - events_age_days * DAY_S
    conn.executemany(
        "INSERT INTO events (device_id, msg_id, channel, received_at, payload) VALUES"
        " (?, ?, 'nfc', ?, ?)",
        [(f"nfc-{i % 3}", f"{events_age_days}-{i}", ts + i * 0.001, "x" * payload)
         for i in range(n)])


def test_retention_deletes_old_rows_and_keeps_daily_counts(edge_config):
    db = open_edge_db(edge_config)
    conn = db.conn
    fill(conn, events_age_days=100, n=600)
    fill(conn, events_age_days=1, n=50)
    conn.executemany("INSERT INTO quarantine (received_at, topic, reason, size, payload)"
                     " VALUES (?, 't', 'not_json', 1, x'00')",
                     [(NOW - 40 * DAY_S,)] * 7 + [(NOW - DAY_S,)] * 2)
    conn.executemany("INSERT INTO sessions (session_id, device_id, customer_id, started_at,"
                     " last_at) VALUES (?, 'nfc-0', ?, ?, ?)",
                     [("old-a", "C1", NOW - 50 * DAY_S, NOW - 50 * DAY_S),
                      ("old-b", None, NOW - 50 * DAY_S, NOW - 50 * DAY_S),
                      ("new", None, NOW - 60, NOW - 30)])
    report = Retention(conn, RetentionPolicy(disk_budget_bytes=0), clock=lambda: NOW).run()
    assert report.deleted["events"] == 600 and report.deleted["quarantine"] == 7
    assert report.deleted["sessions"] == 2
    assert query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 50
    assert query(edge_config.db_path, "SELECT sum(n) FROM event_daily")[0][0] == 600
    assert query(edge_config.db_path, "SELECT reason, n FROM quarantine_daily") == [
        ("not_json", 7)]
    assert query(edge_config.db_path, "SELECT sessions, identified FROM session_daily") == [
        (2, 1)]
    assert query(edge_config.db_path, "SELECT session_id FROM sessions") == [("new",)]
    conn.close()


def test_disk_budget_sheds_old_rows_not_fresh_unsent_events(edge_config):
    db = open_edge_db(edge_config)
    conn = db.conn
    fill(conn, events_age_days=5, n=4000)          # ~3.5 MB of old events
    fill(conn, events_age_days=0.01, n=200)        # fresh: never shed
    conn.executemany("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at)"
                     " VALUES (?, 'interest', 'k', '{}', ?)",
                     [(f"e{i}", NOW - 5) for i in range(100)])  # unsent, seconds old
    retention = Retention(conn, RetentionPolicy(events_days=0, quarantine_days=0,
                                                sessions_days=0, disk_budget_bytes=1_500_000),
                          clock=lambda: NOW)
    before = retention.used_bytes()
    assert before > 1_500_000
    report = retention.run()
    assert report.shed["events"] > 0 and not report.over_budget
    assert report.used_bytes <= 1_500_000 < before
    assert query(edge_config.db_path, "SELECT count(*) FROM outbox")[0][0] == 100
    assert query(edge_config.db_path, "SELECT count(*) FROM events WHERE received_at >"
                 " ?", NOW - DAY_S)[0][0] == 200
    shed = report.shed["events"]
    assert query(edge_config.db_path, "SELECT sum(n) FROM event_daily")[0][0] == shed
    conn.close()


def test_retention_runs_on_a_standalone_edge(edge_config, device):
    """No central_url: the writer's housekeeping applies retention by itself."""
    db = open_edge_db(edge_config)
    fill(db.conn, events_age_days=400, n=30)
    db.conn.close()
    node = EdgeNode(edge_config).start()  # central_url is empty: standalone
    try:
        device("nfc-01").send("nfc", {"uid": "04a1b2c3d4e5f6"})
        wait_until(lambda: query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 1,
                   timeout=10)
        assert query(edge_config.db_path, "SELECT sum(n) FROM event_daily")[0][0] == 30
    finally:
        node.stop()


def test_a_standalone_edge_expires_its_outbox_oldest_first(edge_config):
    """No central to send to: outbox rows go by age, in seq order, more than a chunk a run."""
    from edge.retention import CHUNK

    db = open_edge_db(edge_config)
    conn = db.conn
    old, young = NOW - 100 * DAY_S, NOW - DAY_S
    ages = [old] * (CHUNK + 7) + [young] * 5 + [old]  # the last one waits behind young rows
    with conn:
        conn.executemany("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at)"
                         " VALUES (?, 'interest', 's', '{}', ?)",
                         [(f"e{i}", t) for i, t in enumerate(ages)])
    report = Retention(conn, RetentionPolicy(standalone=True, disk_budget_bytes=0),
                       clock=lambda: NOW).run()
    assert report.deleted["outbox"] == CHUNK + 7
    assert [r[0] for r in conn.execute("SELECT created_at FROM outbox ORDER BY seq")] == (
        [young] * 5 + [old])
    not_standalone = Retention(conn, RetentionPolicy(disk_budget_bytes=0), clock=lambda: NOW)
    assert not_standalone.run().deleted["outbox"] == 0  # unsent rows wait for central
    conn.close()


def edge_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True,
                          text=True, timeout=60)


def test_online_backup_and_restore(edge_config, device, tmp_path):
    edge = EdgeNode(edge_config).start()
    dev = device("nfc-01")
    for i in range(20):
        dev.send("nfc", {"uid": "04a1b2c3d4e5f6"}, msg_id=f"b{i}")
    wait_until(lambda: query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 20)
    dest = tmp_path / "backup.db"
    done = edge_cli("backup", str(dest), "--db", str(edge_config.db_path))  # edge running
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["backup"] == str(dest)
    assert query(dest, "SELECT count(*) FROM events")[0][0] == 20
    assert query(dest, "PRAGMA quick_check") == [("ok",)]
    dev.send("nfc", {"uid": "04a1b2c3d4e5f6"}, msg_id="after-backup")
    wait_until(lambda: query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 21)
    refused = edge_cli("restore", str(dest), "--db", str(edge_config.db_path))
    assert refused.returncode == 3 and "in use by another edge" in refused.stderr
    assert "Traceback" not in refused.stderr
    edge.stop()
    done = edge_cli("restore", str(dest), "--db", str(edge_config.db_path))
    assert done.returncode == 0, done.stderr
    kept = json.loads(done.stdout.splitlines()[-1])["previous_kept_as"]
    assert query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 20
    assert query(kept, "SELECT count(*) FROM events")[0][0] == 21
    node = EdgeNode(edge_config).start()  # and an edge starts on the restored database
    node.stop()


def test_backup_refuses_garbage(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"nope" * 1000)
    done = edge_cli("restore", str(bad), "--db", str(tmp_path / "edge.db"))
    assert done.returncode == 3 and "not an SQLite database" in done.stderr
