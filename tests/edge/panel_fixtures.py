"""Fixtures for the panel tests: an edge database with known rows, the app, logins.

Imported by the panel test modules (``from .panel_fixtures import *``-style
explicit imports), so the edge conftest stays untouched.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from edge.db import connect, migrate
from edge.panel import create_app
from edge.panel.users import create_user
from edge.signage_service import store_playlists

MANAGER = ("mgr", "manager-password-1")
STAFF = ("clerk", "staff-password-1")
CUSTOMER = "C0012345634"
HOSTILE = b"<script>alert('x')</script>\x00\x01\xff{\"msg_id\":"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _event(kind: str, n: int, customer: str | None, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"ev-{kind}-{n}", "type": kind, "store_id": "store-test",
            "device_id": "nfc-01", "zone": "shoes", "received_at": time.time() - 60 + n,
            "customer_id": customer, "session_id": f"sess-{n}", **extra}


def fill(db_path: Path) -> None:
    """Devices (one stale), quarantine rows (32 not_json, 2 schema, 1 hostile), outbox,
    playlists."""
    db = connect(db_path)
    migrate(db)
    conn = db.conn
    now = time.time()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO devices (device_id, kind, zone, shelf, fw, state, heartbeat_s, last_seen,"
        " stale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [("nfc-01", "nfc_reader", "shoes", "S1", "1.4.2", "online", 30, now - 5, 0),
         ("qr-01", "qr_scanner", "kitchen", "K2", "2.0.0", "online", 30, now - 900, 1)])
    rows = [(now - 100 + i, "vitrine/v1/store-test/devices/nfc-01/nfc", "nfc-01", "not_json",
             "not JSON", 9, b"not json!") for i in range(32)]
    rows += [(now - 50 + i, "vitrine/v1/store-test/devices/qr-01/qr", "qr-01", "schema",
              "ts: must be number", 20, b'{"ts": "yesterday"}') for i in range(2)]
    rows.append((now, "vitrine/v1/store-test/devices/nfc-01/nfc", "nfc-01", "bad_ndef",
                 "<b>bold</b> detail", len(HOSTILE), HOSTILE))
    conn.executemany("INSERT INTO quarantine (received_at, topic, device_id, reason, detail,"
                     " size, payload) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    events = [("interest", _event("interest", 1, CUSTOMER, gtin="09506000134352", shelf="S1",
                                  product={"name": "Trail shoe"})),
              ("presence", _event("presence", 2, CUSTOMER, method="card")),
              ("interest", _event("interest", 3, None, gtin="04006381333931",
                                  product={"name": "Kettle"}))]
    conn.executemany(
        "INSERT INTO outbox (event_id, kind, customer_key, payload, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(ev["event_id"], kind, ev["customer_id"] or ev["session_id"], json.dumps(ev),
          ev["received_at"]) for kind, ev in events])
    conn.execute("INSERT INTO events (device_id, msg_id, channel, received_at, payload)"
                 " VALUES ('nfc-01', 'm1', 'nfc', ?, '{}')", (now,))
    # The store's playlists: one, "morning", with one item, "hello" (the editor's routes).
    store_playlists(conn, json.dumps(
        {"format": "vitrine-playlist/1", "timezone": "Europe/Paris",
         "playlists": [{"id": "morning", "zones": ["shoes"], "priority": 5,
                        "schedule": {"from": "08:00", "to": "12:00"},
                        "items": [{"kind": "text", "id": "hello", "title": "Bonjour"}]}]}))
    conn.execute("COMMIT")
    conn.close()
    create_user(db_path, *MANAGER, "manager")
    create_user(db_path, *STAFF, "staff")


@pytest.fixture(scope="session")
def _panel_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Filled once: two scrypt hashes and the migrations cost ~0.6 s per test otherwise."""
    path = tmp_path_factory.mktemp("panel") / "template.db"
    fill(path)
    return path


@pytest.fixture
def panel_db(_panel_db_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "edge.db"
    shutil.copyfile(_panel_db_template, path)
    return path


@pytest.fixture
def app(panel_db: Path) -> Flask:
    return create_app({"TESTING": True, "DB_PATH": str(panel_db), "SECRET_KEY": "test-only"})


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c


def csrf_token(client: FlaskClient, path: str = "/auth/login") -> str:
    """The CSRF token a form on ``path`` carries for this client's session."""
    match = _CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no csrf_token field on {path}"
    return match.group(1)


def login(client: FlaskClient, user: tuple[str, str], **extra: str) -> Any:
    return client.post("/auth/login", data={"username": user[0], "password": user[1],
                                            "csrf_token": csrf_token(client), **extra})
