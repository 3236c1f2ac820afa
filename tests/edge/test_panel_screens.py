"""Screens page on a real edge node and Mosquitto: what each screen shows, push to a zone."""

from __future__ import annotations

import base64
import io
import json
import queue
import re
import sqlite3
import threading

import pytest

from contract.ndef_codec import encode_uri
from contract.topics import command_topic
from edge.panel import create_app
from edge.panel.users import create_user

from .conftest import GTIN, GTIN_2, make_client, wait_until
from .panel_fixtures import MANAGER, csrf_token, login

pytestmark = pytest.mark.integration


def test_manager_sees_what_screens_show_and_pushes_a_product(edge, broker, device):
    create_user(edge.cfg.db_path, *MANAGER, "manager")
    app = create_app({"TESTING": True, "SECRET_KEY": "t"}, node=edge)
    c = app.test_client()
    login(c, MANAGER)
    got: queue.Queue = queue.Queue()
    screen = make_client(broker.port, "sign-01", "sign-01-pw", clean=False)
    screen.on_message = lambda cl, u, msg: got.put(json.loads(msg.payload))
    subscribed = threading.Event()
    screen.on_subscribe = lambda *a: subscribed.set()
    screen.subscribe(command_topic(broker.store_id, "signage", "sign-01"), qos=1)
    assert subscribed.wait(5)
    try:
        html = c.get("/screens/").get_data(as_text=True)
        assert 'data-screen="sign-01"' in html and "nothing since the edge started" in html

        # A tap in the screen's zone (shoes, nfc-01): the screen shows it, so does the panel.
        def row() -> str:
            return re.search(r'data-screen="sign-01".*?</tr>',
                             c.get("/screens/").get_data(as_text=True), re.S).group(0)

        ndef = encode_uri(f"https://id.gs1.org/01/{GTIN}")
        device("nfc-01").send("nfc", {"uid": "04c0ffee123456",
                                      "ndef": base64.b64encode(ndef).decode()})
        first = got.get(timeout=10)
        while first.get("cmd") != "show_product":  # the retained playlist comes first
            first = got.get(timeout=10)
        assert first["gtin"] == GTIN
        wait_until(lambda: "Trail shoe" in row(), timeout=5)

        r = c.post("/screens/push", data={"csrf_token": csrf_token(c, "/screens/"),
                                          "zone": "shoes", "gtin": GTIN_2})
        assert r.status_code == 302
        # Handed to the signage runtime like a tap: debounced (the shoe stays up its
        # minimum time first), then enriched and sent.
        cmd = got.get(timeout=10)
        while cmd.get("cmd") != "show_product" or cmd["gtin"] != GTIN_2:
            cmd = got.get(timeout=10)
        assert cmd["cmd"] == "show_product" and cmd["gtin"] == GTIN_2
        assert cmd["name"] == "Kettle" and cmd["price_cents"] == 3999
        assert "customer_id" not in cmd and "session_id" not in cmd  # a public screen
        wait_until(lambda: "Kettle" in row(), timeout=5)
        assert "pushed by mgr" in row()

        r = c.post("/screens/push", data={"csrf_token": csrf_token(c, "/screens/"),
                                          "zone": "kitchen", "gtin": GTIN_2})
        assert r.status_code == 400  # no screen in that zone
    finally:
        screen.disconnect()
        screen.loop_stop()


def test_standalone_panel_cannot_push(tmp_path):
    from edge.db import connect, migrate

    db = connect(tmp_path / "edge.db")
    migrate(db)
    db.conn.close()
    create_user(tmp_path / "edge.db", *MANAGER, "manager")
    c = create_app({"TESTING": True, "SECRET_KEY": "t", "DB_PATH": str(tmp_path / "edge.db")}
                   ).test_client()
    login(c, MANAGER)
    assert "needs the panel inside the edge node" in c.get("/screens/").get_data(as_text=True)
    r = c.post("/screens/push", data={"csrf_token": csrf_token(c, "/screens/"), "zone": "x",
                                      "gtin": GTIN})
    assert r.status_code == 400


def test_manager_loads_playlists_and_sees_labels_out_of_date(edge, broker):
    create_user(edge.cfg.db_path, *MANAGER, "manager")
    app = create_app({"TESTING": True, "SECRET_KEY": "t"}, node=edge)
    c = app.test_client()
    login(c, MANAGER)
    doc = {"format": "vitrine-playlist/1", "timezone": "Europe/Paris",
           "playlists": [{"id": "default", "default": True, "zones": ["*"],
                          "items": [{"kind": "text", "id": "hello", "title": "<b>Bonjour</b>"}]}]}
    r = c.post("/screens/playlists", content_type="multipart/form-data",
               data={"csrf_token": csrf_token(c, "/screens/"),
                     "file": (io.BytesIO(json.dumps(doc).encode()), "p.json")})
    assert r.status_code == 302
    html = c.get("/screens/").get_data(as_text=True)
    assert re.search(r'id="playlists".*?<td>default</td>', html, re.S)
    bad = {**doc, "playlists": [{"id": "x", "items": [{"kind": "nope"}]}]}
    r = c.post("/screens/playlists", content_type="multipart/form-data",
               data={"csrf_token": csrf_token(c, "/screens/"),
                     "file": (io.BytesIO(json.dumps(bad).encode()), "p.json")})
    assert r.status_code == 400 and "was refused" in r.get_data(as_text=True)
    # What the screen reported playing last (proof of play), once housekeeping kept it.
    conn0 = sqlite3.connect(edge.cfg.db_path, isolation_level=None)
    conn0.execute("INSERT INTO events (device_id, msg_id, channel, received_at, payload) VALUES"
                  " ('sign-01', 'p1', 'play', 1e9, ?)", (json.dumps(
                      {"item_id": "hello", "kind": "text", "trigger": "schedule",
                       "duration_s": 12.4}),))
    edge.request_reload(wait=5)  # a housekeeping pass
    wait_until(lambda: "hello (text, schedule, 12 s)" in c.get("/screens/").get_data(
        as_text=True), timeout=10)
    # A label the edge sent a price to that has not acknowledged it is out of date.
    conn = sqlite3.connect(edge.cfg.db_path, isolation_level=None)
    conn.execute("INSERT INTO shelf_labels (device_id, gtin, want_hash, want_price_cents,"
                 " sent_at) VALUES ('label-x', ?, 'h2', 8999, 1)", (GTIN,))
    html = c.get("/screens/").get_data(as_text=True)
    assert re.search(r'data-label="label-x".*?Trail shoe.*?89.99', html, re.S)


def test_every_page_title_is_plain_text():
    """A title block is the browser tab's text: a page body pasted into it (as happened
    to screens.html in a merge) would put tables, forms and a CSRF token in <title>."""
    from pathlib import Path

    import edge.panel

    templates = Path(edge.panel.__file__).parent / "templates"
    checked = 0
    for path in templates.rglob("*.html"):
        for title in re.findall(r"\{% block title %\}(.*?)\{% endblock %\}", path.read_text(),
                                re.S):
            checked += 1
            assert "<" not in title and "\n" not in title, f"{path.name}: {title[:80]!r}"
    assert checked >= 10
