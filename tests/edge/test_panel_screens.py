"""Screens page on a real edge node and Mosquitto: what each screen shows, push to a zone."""

from __future__ import annotations

import base64
import json
import queue
import re
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
        assert got.get(timeout=10)["gtin"] == GTIN
        wait_until(lambda: "Trail shoe" in row(), timeout=5)

        r = c.post("/screens/push", data={"csrf_token": csrf_token(c, "/screens/"),
                                          "zone": "shoes", "gtin": GTIN_2})
        assert r.status_code == 302
        cmd = got.get(timeout=5)
        assert cmd["cmd"] == "show_product" and cmd["gtin"] == GTIN_2
        assert cmd["name"] == "Kettle" and cmd["price_cents"] == 3999
        assert "customer_id" not in cmd and "session_id" not in cmd  # a public screen
        assert "Kettle" in row() and "pushed by mgr" in row()

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
