"""What a manager (and a clerk) does with the panel, through Flask's test client.

Users, devices (with real broker files through vitrine.provisioning), prices and
stock counts through the rules, operations and alarms, durable analytics and
CSV, French and English, the live event stream, and hostile text everywhere.
"""
# ruff: noqa: F811  (pytest fixtures imported from panel_fixtures are parameters here)

from __future__ import annotations

import ast
import csv
import io
import json
import re
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from edge import analytics
from edge.panel import create_app
from edge.panel.analytics import heatmap, to_csv
from edge.panel.i18n import FR
from edge.panel.prices import parse_price, parse_quantity
from vitrine.provisioning import Provisioner

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

XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"


def _conn(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest.fixture
def broker_dir(tmp_path: Path) -> Path:
    d = tmp_path / "broker"
    Provisioner(d, "store-test").add("edge", "edge", "edge-pw")
    return d


@pytest.fixture
def mgr(panel_db, broker_dir):
    app = create_app({"TESTING": True, "DB_PATH": str(panel_db), "SECRET_KEY": "t",
                      "BROKER_DIR": str(broker_dir), "STORE_ID": "store-test"})
    c = app.test_client()
    login(c, MANAGER)
    c.token = csrf_token(c, "/")  # type: ignore[attr-defined]
    return c


# -- users ---------------------------------------------------------------------------
def test_manager_adds_a_user_who_can_log_in_with_the_password_shown_once(mgr, app):
    r = mgr.post("/users/add", data={"csrf_token": mgr.token, "username": "anna",
                                     "role": "staff"})
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="new-password">([^<]+)<', r.get_data(as_text=True)).group(1)
    assert password not in mgr.get("/users/").get_data(as_text=True)  # never shown again
    other = app.test_client()
    assert login(other, ("anna", password)).status_code == 302
    assert other.get("/users/").status_code == 403  # staff: no user admin
    r = mgr.post("/users/add", data={"csrf_token": mgr.token, "username": "anna",
                                     "role": "staff"})
    assert r.status_code == 400 and "exists" in r.get_data(as_text=True)
    r = mgr.post("/users/add", data={"csrf_token": mgr.token, "username": XSS, "role": "staff"})
    assert r.status_code == 400 and "<script>" not in r.get_data(as_text=True)


def test_reset_replaces_the_password(mgr, app):
    r = mgr.post("/users/clerk/reset", data={"csrf_token": mgr.token})
    new = re.search(r'id="new-password">([^<]+)<', r.get_data(as_text=True)).group(1)
    c = app.test_client()
    assert login(c, STAFF).status_code == 401
    assert login(c, ("clerk", new)).status_code == 302
    assert mgr.post("/users/nobody/reset", data={"csrf_token": mgr.token}).status_code == 404


def test_disable_takes_effect_on_the_next_request(mgr, app):
    clerk = app.test_client()
    login(clerk, STAFF)
    assert clerk.get("/").status_code == 200
    r = mgr.post("/users/clerk/disable", data={"csrf_token": mgr.token})
    assert r.status_code == 200 and "User clerk disabled." in r.get_data(as_text=True)
    assert clerk.get("/").status_code == 302  # session no longer names an active user
    assert login(app.test_client(), STAFF).status_code == 401
    assert mgr.post("/users/mgr/disable", data={"csrf_token": mgr.token}).status_code == 400
    mgr.post("/users/clerk/disable", data={"csrf_token": mgr.token, "enable": "1"})
    assert login(app.test_client(), STAFF).status_code == 302


# -- devices -------------------------------------------------------------------------
def test_add_and_revoke_a_device_writes_broker_credentials(mgr, broker_dir, panel_db):
    r = mgr.post("/devices/add", data={"csrf_token": mgr.token, "device_id": "nfc-77",
                                       "kind": "nfc_reader", "zone": "shoes", "shelf": "S9"})
    html = r.get_data(as_text=True)
    assert r.status_code == 201
    password = re.search(r'id="created-password">([^<]+)<', html).group(1)
    assert len(password) >= 24
    principals = {p.name: p for p in Provisioner(broker_dir, "store-test").list()}
    assert principals["nfc-77"].role == "nfc_reader"
    assert password not in (broker_dir / "passwd").read_text()  # only a $7$ hash is stored
    assert "nfc-77:$7$" in (broker_dir / "passwd").read_text()
    assert _conn(panel_db).execute("SELECT kind, zone, shelf, last_seen FROM devices WHERE"
                                   " device_id = 'nfc-77'").fetchone() == (
        "nfc_reader", "shoes", "S9", None)
    page = mgr.get("/devices/").get_data(as_text=True)
    assert password not in page
    assert re.search(r'data-device="nfc-77".*?data-status="never_seen"', page, re.S)
    r = mgr.post("/devices/nfc-77/revoke", data={"csrf_token": mgr.token})
    assert r.status_code == 302
    assert "nfc-77" not in {p.name for p in Provisioner(broker_dir, "store-test").list()}
    assert "nfc-77" not in (broker_dir / "passwd").read_text()


def test_the_panel_refuses_edge_and_observer_principals(mgr, broker_dir):
    for kind in ("edge", "observer", "bogus"):
        r = mgr.post("/devices/add", data={"csrf_token": mgr.token, "device_id": "x-1",
                                           "kind": kind})
        assert r.status_code == 400, kind
    r = mgr.post("/devices/edge/revoke", data={"csrf_token": mgr.token})
    assert r.status_code == 400
    assert {p.name for p in Provisioner(broker_dir, "store-test").list()} == {"edge"}
    r = mgr.post("/devices/add", data={"csrf_token": mgr.token, "device_id": "../etc",
                                       "kind": "nfc_reader"})
    assert r.status_code == 400


def test_device_pages_say_when_provisioning_is_off(client):
    login(client, MANAGER)
    assert "panel_broker_dir" in client.get("/devices/").get_data(as_text=True)
    token = csrf_token(client, "/")
    r = client.post("/devices/add", data={"csrf_token": token, "device_id": "nfc-5",
                                          "kind": "nfc_reader"})
    assert r.status_code == 302


# -- prices and stock ----------------------------------------------------------------
@pytest.mark.parametrize(("text", "cents"), [("12.99", 1299), ("12,9", 1290), ("7", 700),
                                             ("0.05", 5), ("", None), ("-1", None),
                                             ("1e3", None), ("12.999", None)])
def test_parse_price(text, cents):
    assert parse_price(text) == cents


def test_parse_quantity():
    assert parse_quantity("12") == 12 and parse_quantity("-1") is None
    assert parse_quantity("x") is None and parse_quantity("99999999") is None


def test_markdown_goes_through_the_price_rule(mgr, panel_db):
    conn = _conn(panel_db)
    conn.execute("INSERT INTO products (gtin, name, price_cents, currency) VALUES"
                 " ('09506000134352', 'Trail shoe', 11999, 'EUR')")
    r = mgr.post("/prices/markdown", data={"csrf_token": mgr.token, "gtin": "09506000134352",
                                           "price": "99.50"})
    assert r.status_code == 200
    assert "the price rule now shows 99.50" in r.get_data(as_text=True)
    assert conn.execute("SELECT price_cents FROM products WHERE gtin = '09506000134352'"
                        ).fetchone() == (9950,)
    assert conn.execute("SELECT price_cents, set_by FROM local_markdowns").fetchall() == [
        (9950, "mgr")]
    # The rule ("lowest" by default) still prefers central's price when it is lower.
    conn.execute("INSERT INTO sync_catalogue VALUES ('09506000134352', 'Trail shoe', NULL,"
                 " NULL, 1)")
    conn.execute("INSERT INTO sync_prices VALUES ('store-test', '09506000134352', 'regular', 0,"
                 " NULL, 8000, 'EUR', NULL, 1)")
    mgr.post("/prices/markdown", data={"csrf_token": mgr.token, "gtin": "09506000134352",
                                       "price": "95"})
    assert conn.execute("SELECT price_cents FROM products WHERE gtin = '09506000134352'"
                        ).fetchone() == (8000,)
    r = mgr.post("/prices/markdown", data={"csrf_token": mgr.token, "gtin": "09506000134352",
                                           "remove": "1"})
    assert conn.execute("SELECT count(*) FROM local_markdowns").fetchone() == (0,)
    assert mgr.post("/prices/markdown", data={"csrf_token": mgr.token, "gtin": "nope",
                                              "price": "1"}).status_code == 404
    assert mgr.post("/prices/markdown", data={"csrf_token": mgr.token,
                                              "gtin": "09506000134352",
                                              "price": XSS}).status_code == 400


def test_staff_record_a_stock_count_weighed_by_the_stock_rule(app, panel_db):
    conn = _conn(panel_db)
    conn.execute("INSERT INTO products (gtin, name) VALUES ('04006381333931', 'Kettle')")
    conn.execute("INSERT INTO sync_stock VALUES ('store-001', '04006381333931', 12, ?)",
                 (time.time() - 3600,))
    c = app.test_client()
    login(c, STAFF)
    html = c.get("/stock/?q=Kettle").get_data(as_text=True)
    assert re.search(r'class="on-hand">12 \(central\)', html)
    r = c.post("/stock/count", data={"csrf_token": csrf_token(c, "/"),
                                     "gtin": "04006381333931", "quantity": "7"})
    assert r.status_code == 200
    assert re.search(r'class="on-hand">7 \(store_count\)', r.get_data(as_text=True))
    assert conn.execute("SELECT quantity, counted_by FROM local_stock_counts").fetchall() == [
        (7, "clerk")]
    assert c.get("/prices/").status_code == 403
    assert c.post("/stock/count", data={"csrf_token": csrf_token(c, "/"),
                                        "gtin": "04006381333931",
                                        "quantity": "-3"}).status_code == 400


# -- analytics -----------------------------------------------------------------------
def _interest(conn: sqlite3.Connection, n: int, at: float, zone: str, gtin: str) -> None:
    for i in range(n):
        ev = {"event_id": f"a-{zone}-{gtin}-{at}-{i}", "received_at": at, "zone": zone,
              "shelf": zone + "-A", "gtin": gtin, "device_id": "nfc-01"}
        conn.execute("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at)"
                     " VALUES (?, 'interest', 's', ?, ?)", (ev["event_id"], json.dumps(ev), at))


def test_hourly_aggregates_survive_outbox_cleanup(panel_db, mgr):
    conn = _conn(panel_db)
    now = time.time()
    _interest(conn, 5, now - 60, "shoes", "09506000134352")
    _interest(conn, 2, now - 60, "kitchen", "04006381333931")
    conn.execute("BEGIN")
    counted = analytics.roll_up(conn)
    conn.execute("COMMIT")
    assert counted == 9  # the 2 fixture interest events (zone shoes) + 7 new ones
    assert analytics.roll_up(conn) == 0  # idempotent: the cursor moved
    conn.execute("DELETE FROM outbox")  # central has them: cleanup
    hour = int((now - 60) // 3600) * 3600
    assert conn.execute("SELECT taps FROM interest_hourly WHERE hour = ? AND zone = 'kitchen'",
                        (hour,)).fetchone() == (2,)
    html = mgr.get("/analytics/").get_data(as_text=True)
    assert 'data-zone="shoes"' in html and 'data-zone="kitchen"' in html
    rows = list(csv.reader(io.StringIO(mgr.get("/analytics/products.csv").get_data(
        as_text=True))))
    assert rows[0] == ["gtin", "name", "taps", "ordered", "orders", "conversion"]
    assert [r[:3] for r in rows if r[0] == "09506000134352"] == [
        ["09506000134352", "", "6"]]
    assert mgr.get("/analytics/nothing.csv").status_code == 404


def test_tapped_to_ordered_per_product(panel_db, mgr):
    conn = _conn(panel_db)
    now = time.time()
    _interest(conn, 4, now - 60, "shoes", "09506000134352")
    order = {"order_id": "o-1", "channel": "kiosk", "created_at": now - 30,
             "fulfilment": {"type": "click_and_collect"},
             "lines": [{"gtin": "09506000134352", "quantity": 2},
                       {"gtin": "04006381333931", "quantity": 1}]}
    bad = {"order_id": "o-2", "created_at": now, "lines": "not a list"}
    for o in (order, bad):
        conn.execute("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at)"
                     " VALUES (?, 'order', ?, ?, ?)", (o["order_id"], o["order_id"],
                                                      json.dumps(o), now))
    conn.execute("BEGIN")
    analytics.roll_up(conn)
    conn.execute("COMMIT")
    assert conn.execute("SELECT gtin, sum(ordered), sum(orders) FROM product_daily"
                        " WHERE ordered > 0 GROUP BY gtin ORDER BY gtin").fetchall() == [
        ("04006381333931", 1, 1), ("09506000134352", 2, 1)]
    rows = list(csv.reader(io.StringIO(mgr.get("/analytics/products.csv").get_data(
        as_text=True))))
    assert rows[0] == ["gtin", "name", "taps", "ordered", "orders", "conversion"]
    shoe = next(r for r in rows if r[0] == "09506000134352")
    assert shoe[2:] == ["5", "2", "1", "20.0 %"]  # 1 fixture tap + 4; one order of 2


def test_uptime_from_the_state_history(panel_db):
    conn = _conn(panel_db)
    t0 = 1_000_000.0
    conn.execute("UPDATE devices SET stale = 0, state = 'online', last_seen = ?", (t0,))
    assert analytics.record_states(conn, t0) == 2
    assert analytics.record_states(conn, t0 + 10) == 0  # nothing changed
    conn.execute("UPDATE devices SET state = 'offline' WHERE device_id = 'nfc-01'")
    analytics.record_states(conn, t0 + 300)
    conn.execute("UPDATE devices SET state = 'online' WHERE device_id = 'nfc-01'")
    analytics.record_states(conn, t0 + 400)
    up = analytics.uptime(conn, t0, t0 + 1000)
    assert up == {"nfc-01": 0.9, "qr-01": 1.0}


def test_heatmap_levels_and_csv_injection():
    tiles = heatmap([("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")], {"a": 10, "b": 1})
    assert [t["level"] for t in tiles] == [5, 1, 0, 0]
    assert (tiles[3]["x"], tiles[3]["y"]) == (0, 120)
    text = to_csv(["name"], [["=HYPERLINK(\"x\")"], ["+1"], ["ok"]])
    assert text.splitlines()[1:] == ["\"'=HYPERLINK(\"\"x\"\")\"", "'+1", "ok"]


# -- operations, alarms, language ----------------------------------------------------
def test_operations_and_alarms_on_every_page(mgr):
    html = mgr.get("/operations/").get_data(as_text=True)
    assert 'id="ops-backlog"' in html and 'id="ops-disk"' in html
    assert "unreachable" in html  # no broker on 127.0.0.1:1883 in this test
    for page in ("/", "/devices/", "/users/", "/analytics/", "/prices/"):
        body = mgr.get(page).get_data(as_text=True)
        assert 'id="alarms"' in body and "Broker unreachable at 127.0.0.1:1883" in body, page
        assert "1 device(s) stale." in body and "35 quarantined message(s)" in body


def test_french_everywhere(mgr):
    r = mgr.post("/lang", data={"csrf_token": mgr.token, "lang": "fr", "back": "/devices/"})
    assert r.status_code == 302 and r.location == "/devices/"
    html = mgr.get("/devices/").get_data(as_text=True)
    assert '<html lang="fr">' in html and "Appareils" in html and "muet" in html
    assert "Broker injoignable" in html
    r = mgr.post("/lang", data={"csrf_token": mgr.token, "lang": "fr", "back": "//evil.example"})
    assert r.location == "/"


def test_accept_language_picks_french_before_login(client):
    html = client.get("/auth/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"}
                      ).get_data(as_text=True)
    assert "Mot de passe" in html


_CALL = re.compile(r"""_\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+|'(?:[^'\\]|\\.)*')""")


def test_every_string_has_a_french_translation():
    root = Path(__file__).resolve().parents[2] / "edge" / "panel"
    texts = set()
    for path in [*root.glob("templates/**/*.html"), *root.glob("*.py")]:
        if path.name != "i18n.py":  # its docstring shows the syntax
            texts |= {ast.literal_eval(f"({m})") for m in _CALL.findall(path.read_text())}
    ops = (root / "operations.py").read_text()
    texts |= set(re.findall(r'\("([^"]+)",\s*\{', ops))  # the alarm texts
    dynamic = {"received", "accepted", "duplicates", "quarantined", "interest", "presence",
               "online", "offline", "stale", "never_seen", "manager", "staff", "all",
               "unreviewed", "reviewed", "hour", "zone", "shelf", "gtin", "taps", "name",
               "device", "uptime", "Device uptime (24 h)", "ordered",
               "orders", "conversion", "Tapped -> ordered (7 days)", "uptime_s", "buffered",
               "reconnects", "temperature_c",
               "Interest per hour"}
    # Exactly as written: gettext looks a text up as is ("Items" is not "items").
    missing = sorted(t for t in texts if t not in FR)
    missing += sorted(t for t in dynamic if t not in FR and t.lower() not in FR)
    assert len(texts) > 100 and missing == []


# -- hostile input and the live stream ------------------------------------------------
def test_hostile_text_is_escaped_on_every_page(mgr, panel_db):
    conn = _conn(panel_db)
    conn.execute("INSERT INTO devices (device_id, kind, zone, shelf, fw, state) VALUES"
                 " (?, ?, ?, ?, ?, 'online')", ("evil-1", XSS, XSS, XSS, XSS))
    conn.execute("INSERT INTO products (gtin, name, brand) VALUES ('00000000000017', ?, ?)",
                 (XSS, XSS))
    ev = {"event_id": "x1", "received_at": time.time(), "zone": XSS, "shelf": XSS,
          "gtin": XSS, "device_id": XSS, "product": {"name": XSS}, "customer_id": XSS}
    conn.execute("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at)"
                 " VALUES ('x1', 'interest', 'k', ?, 0)", (json.dumps(ev),))
    conn.execute("INSERT INTO interest_hourly VALUES (0, ?, ?, ?, 3)", (XSS, XSS, XSS))
    conn.execute("INSERT INTO sync_state (feed, last_error) VALUES ('prices', ?)", (XSS,))
    conn.execute("INSERT INTO devices (device_id, kind, zone, state) VALUES"
                 " ('evil-sign', 'signage', ?, 'online')", (XSS,))  # a screen in zone XSS
    for page in ("/", "/devices/", "/events/", "/prices/?q=%3Cscript%3E", "/stock/",
                 "/analytics/", "/operations/", "/quarantine/", "/users/",
                 f"/prices/?q={XSS}", "/playlists/", "/playlists/morning/edit",
                 "/pickups/scan/"):
        html = mgr.get(page).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, page
    assert "&lt;script&gt;" in mgr.get("/events/").get_data(as_text=True)


def _read_events(resp, want: str, timeout: float = 5.0) -> list[tuple[str, dict]]:
    """Read the stream until an event named ``want`` arrived."""
    got: list[tuple[str, dict]] = []
    buf = ""
    deadline = time.monotonic() + timeout
    for chunk in resp.response:
        buf += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines()
                          if ": " in line and not line.startswith(":"))
            if "event" in fields:
                got.append((fields["event"], json.loads(fields["data"])))
        if any(name == want for name, _ in got) or time.monotonic() > deadline:
            return got
    return got


def test_live_stream_sends_new_taps_masked_and_device_states(app, panel_db):
    c = app.test_client()
    login(c, STAFF)
    resp = c.get("/live/stream")
    try:
        assert resp.mimetype == "text/event-stream"
        first = _read_events(resp, "status")
        status = dict(first)["status"]
        assert status["devices"] == {"nfc-01": "online", "qr-01": "stale"}
        conn = _conn(panel_db)
        ev = {"event_id": "live-1", "received_at": time.time(), "zone": "shoes",
              "gtin": "09506000134352", "device_id": "nfc-01", "customer_id": CUSTOMER,
              "product": {"name": "Trail shoe"}}
        conn.execute("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at)"
                     " VALUES ('live-1', 'interest', 'k', ?, 0)", (json.dumps(ev),))
        taps = [d for name, d in _read_events(resp, "tap") if name == "tap"]
        assert taps and taps[0]["product"] == "Trail shoe"
        assert taps[0]["customer"] == "C00\u202634"  # masked for staff, as on the pages
    finally:
        resp.close()


def test_live_stream_resumes_from_last_event_id(app, panel_db):
    c = app.test_client()
    login(c, MANAGER)
    resp = c.get("/live/stream", headers={"Last-Event-ID": "0"})
    try:
        taps = [d for name, d in _read_events(resp, "status") if name == "tap"]
        assert len(taps) == 3 and taps[0]["customer"] == CUSTOMER  # manager: full id
    finally:
        resp.close()


def _reload_as_nobody(pid_dir: str, db: str, out: Any) -> None:
    """In a child that dropped to ``nobody``: the panel's broker reload, as in production."""
    import os

    from flask import get_flashed_messages

    from edge.panel.devices import _reload_broker

    app = create_app({"TESTING": True, "DB_PATH": db, "SECRET_KEY": "t"})
    with app.test_request_context():
        prov = Provisioner(Path(pid_dir), "store-test")
        os.setgid(65534)  # only the reload runs unprivileged: the code tree may be 0700
        os.setuid(65534)
        reloaded = _reload_broker(prov)
        out.put((reloaded, get_flashed_messages()))


def test_a_broker_we_may_not_signal_is_said_not_crashed(panel_db, tmp_path):
    # Production: mosquitto runs as its own user and the edge may not SIGHUP it. Here the
    # "broker" is a process of ours (root) and the panel runs as nobody in a child.
    import multiprocessing as mp
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.fail("this test drops privileges: run the suite as root (as CI does)")
    import shutil

    pid_dir = Path(tempfile.mkdtemp())  # /tmp/pytest-of-root is 0700: nobody reads there
    os.chmod(pid_dir, 0o755)
    db = panel_db
    broker = subprocess.Popen(["sleep", "30"])
    try:
        (pid_dir / "mosquitto.pid").write_text(f"{broker.pid}\n")
        os.chmod(pid_dir / "mosquitto.pid", 0o644)
        q = mp.get_context("fork").Queue()
        child = mp.get_context("fork").Process(target=_reload_as_nobody,
                                               args=(str(pid_dir), str(db), q))
        child.start()
        reloaded, messages = q.get(timeout=20)
        child.join(10)
        assert reloaded is False
        assert any("systemctl reload mosquitto" in m for m in messages)
        assert broker.poll() is None  # not signalled
    finally:
        broker.kill()
        broker.wait()
        shutil.rmtree(pid_dir, ignore_errors=True)


def test_hsts_only_over_https(mgr):
    assert "Strict-Transport-Security" not in mgr.get("/").headers
    r = mgr.get("/", base_url="https://localhost")
    assert r.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_latest_telemetry_is_kept_and_shown(panel_db, mgr):
    conn = _conn(panel_db)
    for i, (up, temp) in enumerate([(10, 20.0), (4000, 21.26)]):
        conn.execute("INSERT INTO events (device_id, msg_id, channel, received_at, payload)"
                     " VALUES ('nfc-01', ?, 'telemetry', ?, ?)",
                     (f"t{i}", 100.0 + i, json.dumps({"uptime_s": up, "temperature_c": temp,
                                                      "buffered": 3, "reconnects": True})))
    conn.execute("BEGIN")
    assert analytics.record_latest(conn) == 1
    conn.execute("COMMIT")
    assert analytics.record_latest(conn) == 0  # cursor moved
    row = re.search(r'data-device="nfc-01".*?class="telemetry">(.*?)</td>',
                    mgr.get("/devices/").get_data(as_text=True), re.S).group(1)
    assert "up 67 min" in row and "°C 21.3" in row and "buffered 3" in row
    assert "reconnects" not in row  # a boolean is not a count


def test_a_stream_ends_by_itself(panel_db):
    app = create_app({"TESTING": True, "DB_PATH": str(panel_db), "SECRET_KEY": "t",
                      "PANEL_STREAM_MAX_S": 0.3})
    c = app.test_client()
    login(c, STAFF)
    t0 = time.monotonic()
    body = c.get("/live/stream").get_data(as_text=True)  # reads to the end
    assert time.monotonic() - t0 < 5 and body.startswith("retry: 1000")


def test_a_disabled_user_loses_the_stream(panel_db, mgr):
    app = create_app({"TESTING": True, "DB_PATH": str(panel_db), "SECRET_KEY": "t"})
    clerk = app.test_client()
    login(clerk, STAFF)
    resp = clerk.get("/live/stream")
    try:
        _read_events(resp, "status")
        mgr.post("/users/clerk/disable", data={"csrf_token": mgr.token})
        t0 = time.monotonic()
        rest = b"".join(resp.response)  # the generator returns once it notices
        assert time.monotonic() - t0 < 5 and b"event: tap" not in rest
    finally:
        resp.close()


@pytest.mark.parametrize("back", ["//evil.example", "/\t/evil.example", "/\\evil.example",
                                  "https://evil.example/", "/%0d%0aX: y"])
def test_language_switch_never_redirects_off_site(mgr, back):
    r = mgr.post("/lang", data={"csrf_token": mgr.token, "lang": "fr", "back": back})
    assert r.status_code == 302 and r.location in ("/", back) and "evil" not in r.location
