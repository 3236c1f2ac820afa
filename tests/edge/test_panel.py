"""The store panel through Flask's test client: auth, CSRF, every page, privacy."""
# ruff: noqa: F811  (pytest fixtures imported from panel_fixtures are parameters here)

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge.cli import main as edge_cli
from edge.config import load_config
from edge.metrics import Metrics
from edge.panel import create_app
from edge.panel.events import mask_customer
from edge.panel.quarantine import hex_dump
from edge.panel.server import start_panel
from edge.panel.users import failed_logins

from .panel_fixtures import (  # noqa: F401
    CUSTOMER,
    MANAGER,
    STAFF,
    _panel_db_template,
    app,
    client,
    csrf_token,
    login,
    panel_db,
)

PAGES = ["/", "/devices/", "/quarantine/", "/quarantine/1", "/events/"]


def _db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


# -- authentication ------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES)
def test_every_page_requires_login(client, path):
    r = client.get(path)
    assert r.status_code == 302
    assert r.location.startswith("/auth/login?next=")


def test_api_metrics_requires_login(client):
    r = client.get("/api/metrics")
    assert r.status_code == 401 and r.json == {"error": "login required"}


def test_login_sets_a_strict_session_cookie_and_returns_to_next(client):
    r = login(client, MANAGER, next="/devices/")
    assert r.status_code == 302 and r.location == "/devices/"
    cookie = r.headers["Set-Cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Strict"):
        assert flag in cookie
    assert client.get("/devices/").status_code == 200


def test_login_never_redirects_off_site(client):
    r = login(client, MANAGER, next="//evil.example/x")
    assert r.status_code == 302 and r.location == "/"


def test_wrong_password_is_refused_and_counted(client, panel_db):
    r = login(client, (MANAGER[0], "not-the-password"))
    assert r.status_code == 401
    assert "Wrong user name or password" in r.get_data(as_text=True)
    assert failed_logins(_db(panel_db), MANAGER[0]) == (1, None)
    assert client.get("/").status_code == 302  # still anonymous
    assert login(client, MANAGER).status_code == 302
    assert failed_logins(_db(panel_db), MANAGER[0]) == (0, None)  # reset by success


def test_repeated_failures_slow_the_guesser_but_lock_no_account(client, panel_db):
    """No lockout (a stranger could lock the manager out): see test_panel_login.py."""
    for _ in range(3):
        assert login(client, (STAFF[0], "guess")).status_code == 401
    r = login(client, STAFF)  # this client now waits, whatever it sends
    assert r.status_code == 429 and "try again in" in r.get_data(as_text=True)
    assert failed_logins(_db(panel_db), STAFF[0]) == (3, None)  # counted, never locked
    other = create_app({"TESTING": True, "DB_PATH": str(panel_db), "SECRET_KEY": "test-only"})
    assert login(other.test_client(), STAFF).status_code == 302


def test_guessing_across_names_is_throttled_per_address(panel_db):
    app = create_app({"DB_PATH": str(panel_db), "SECRET_KEY": "t", "PANEL_THROTTLE_LIMIT": 3})
    c = app.test_client()
    for n in range(3):
        assert login(c, (f"nobody{n}", "guess")).status_code == 401
    assert login(c, MANAGER).status_code == 429


def test_post_without_csrf_token_is_400(client, panel_db):
    r = client.post("/auth/login", data={"username": MANAGER[0], "password": MANAGER[1]})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    login(client, MANAGER)
    assert client.post("/quarantine/1/review").status_code == 400
    assert client.post("/auth/logout").status_code == 400
    assert _db(panel_db).execute("SELECT count(*) FROM quarantine WHERE reviewed = 1"
                                 ).fetchone() == (0,)


def test_logout_ends_the_session(client):
    login(client, STAFF)
    r = client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/")})
    assert r.status_code == 302
    assert client.get("/").status_code == 302
    assert client.get("/auth/logout").status_code == 405  # GET cannot log anyone out


def test_pages_carry_security_headers(client):
    r = client.get("/auth/login")
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-store"


# -- pages ---------------------------------------------------------------------------
def test_dashboard_and_api_from_the_database(client):
    login(client, STAFF)
    html = client.get("/").get_data(as_text=True)
    assert "Totals from the edge database" in html
    data = client.get("/api/metrics").json
    assert data["source"] == "database"
    assert data["counters"]["quarantined"] == 35
    assert data["counters"]["accepted"] == 1 and data["counters"]["duplicates"] is None
    assert data["quarantined_by_reason"] == {"bad_ndef": 1, "not_json": 32, "schema": 2}
    assert data["counters"]["interest"] == 2 and data["counters"]["presence"] == 1
    # The oldest outbox row of the fixture was written 59 s before the fixture was filled.
    assert data["outbox"]["backlog"] == 3 and data["outbox"]["oldest_unsent_age_s"] > 55
    assert [d["device_id"] for d in data["stale_devices"]] == ["qr-01"]


def test_dashboard_uses_live_counters_in_process(panel_db):
    metrics = Metrics()
    metrics.add_many(Counter(
        {"received": 7, "accepted": 5, "duplicates": 1, "quarantined": 1,
         "quarantined.not_json": 1, "interest": 4}))
    node = SimpleNamespace(cfg=SimpleNamespace(db_path=panel_db), metrics=metrics)
    c = create_app({"SECRET_KEY": "t"}, node=node).test_client()
    login(c, MANAGER)
    data = c.get("/api/metrics").json
    assert data["source"] == "node"
    assert data["counters"] == {"received": 7, "accepted": 5, "duplicates": 1,
                                "quarantined": 1, "interest": 4, "presence": 0}
    assert data["quarantined_by_reason"] == {"not_json": 1}
    login(c, (MANAGER[0], "wrong-password"))
    assert metrics.get("panel_login_failed") == 1


def test_devices_table_flags_stale_devices(client):
    login(client, MANAGER)
    html = client.get("/devices/").get_data(as_text=True)
    assert "2 registered, 1 stale, 0 never seen" in html
    assert "1.4.2" in html and 'data-status="stale"' in html and "K2" in html


def test_devices_table_shows_a_flood_cut_off(client, panel_db):
    conn = sqlite3.connect(panel_db)
    with conn:
        conn.execute("INSERT INTO device_cutoffs (device_id, cut_at, until, reason, dropped)"
                     " VALUES ('qr-01', ?, ?, 'flood', 1234)", (time.time(), time.time() + 600))
    conn.close()
    login(client, MANAGER)  # devices are the manager's page
    html = client.get("/devices/").get_data(as_text=True)
    assert "1 cut off for flooding" in html and "CUT OFF until" in html and "1234 dropped" in html


def test_quarantine_filters_and_pages(client):
    login(client, MANAGER)
    html = client.get("/quarantine/?reason=schema").get_data(as_text=True)
    assert "2 message(s); page 1 of 1" in html
    html = client.get("/quarantine/?reason=not_json&page=2").get_data(as_text=True)
    assert "32 message(s); page 2 of 2" in html and 'rel="prev"' in html
    html = client.get("/quarantine/?reason=%3Cscript%3E&page=99").get_data(as_text=True)
    assert "35 message(s); page 2 of 2" in html  # unknown reason ignored, page clamped
    html = client.get("/quarantine/").get_data(as_text=True)
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_quarantine_detail_shows_payload_escaped_as_text_and_hex(client):
    login(client, MANAGER)
    html = client.get("/quarantine/35").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;\u00b7\u00b7\ufffd" in html
    assert "3c 73 63 72 69 70 74 3e" in html  # "<script>" in hex
    assert client.get("/quarantine/9999").status_code == 404


def test_hex_dump_is_truncated():
    lines = hex_dump(bytes(range(256)) * 10, limit=64)
    assert len(lines) == 4 and lines[1].startswith("00000010  10 11 12")


def test_mark_reviewed(client, panel_db):
    login(client, MANAGER)
    token = csrf_token(client, "/quarantine/35")
    r = client.post("/quarantine/35/review", data={"csrf_token": token})
    assert r.status_code == 302 and r.location == "/quarantine/35"
    row = _db(panel_db).execute("SELECT reviewed, reviewed_by, reviewed_at FROM quarantine"
                                " WHERE id = 35").fetchone()
    assert row[0] == 1 and row[1] == MANAGER[0] and row[2] > 0
    html = client.get("/quarantine/35").get_data(as_text=True)
    assert f"reviewed by {MANAGER[0]}" in html and 'id="mark-reviewed"' not in html
    assert "34 message(s)" in client.get("/quarantine/?status=unreviewed").get_data(as_text=True)
    assert client.post("/quarantine/9999/review", data={"csrf_token": token}).status_code == 404


def test_events_mask_customer_ids_for_staff_only(client):
    login(client, STAFF)
    html = client.get("/events/").get_data(as_text=True)
    assert CUSTOMER not in html
    assert "C00\u202634" in html and "Trail shoe" in html and "Kettle" in html
    assert "anonymous" in html and "presence (card)" in html
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, MANAGER)
    assert CUSTOMER in client.get("/events/").get_data(as_text=True)


def test_mask_customer():
    assert mask_customer("C0012345634", "staff") == "C00\u202634"
    assert mask_customer("C0012345634", "manager") == "C0012345634"
    assert mask_customer("C12", "staff") == "\u2026"
    assert mask_customer(None, "staff") is None


# -- running it ----------------------------------------------------------------------
def test_panel_user_command(tmp_path, capsys):
    db, pw_file = tmp_path / "edge.db", tmp_path / "pw"
    assert edge_cli(["panel-user", "--db", str(db), "add", "alice", "--role", "staff",
                     "--password-file", str(pw_file)]) == 0
    assert os.stat(pw_file).st_mode & 0o777 == 0o600
    assert edge_cli(["panel-user", "--db", str(db), "add", "alice", "--role", "staff"]) == 2
    assert "exists" in capsys.readouterr().err
    edge_cli(["panel-user", "--db", str(db), "list"])
    assert "alice\tstaff" in capsys.readouterr().out
    c = create_app({"DB_PATH": str(db), "SECRET_KEY": "t"}).test_client()
    assert login(c, ("alice", pw_file.read_text().strip())).status_code == 302


def test_busy_port_leaves_the_node_running_without_a_panel(panel_db, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg = load_config(env={}, db_path=panel_db, panel_port=taken.getsockname()[1])
        assert start_panel(SimpleNamespace(cfg=cfg, metrics=Metrics())) is None
    assert "panel not started" in caplog.text
