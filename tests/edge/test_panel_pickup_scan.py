"""Collecting by the pickup QR: camera frames posted to the edge, and a desk scanner.

Orders come from the kiosk service through the real request router
(:class:`StoreHarness`); frames are real JPEGs of a segno QR decoded by zbar;
the desk scanner's read goes over a real Mosquitto into a real edge node.
"""

from __future__ import annotations

import io
import random
import re
import sqlite3
import time
from pathlib import Path

import pytest
import segno
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from edge.panel import create_app
from edge.panel.users import create_user

from .conftest import GTIN, GTIN_2, wait_until
from .panel_fixtures import MANAGER, STAFF, csrf_token, login
from .store_harness import StoreHarness

KIOSK = "kiosk-01"


def _ready_order(tmp_path: Path) -> dict:
    h = StoreHarness(tmp_path)
    try:
        session = h.identify(KIOSK, "C7")
        order = h.ask(KIOSK, "order_place", {
            "client_order_id": "scan-1", "session_id": session,
            "lines": [{"gtin": GTIN, "quantity": 1}, {"gtin": GTIN_2, "quantity": 3}],
            "fulfilment": {"type": "click_and_collect"}})
        h.ask(KIOSK, "order_pay", {"order_id": order["order_id"], "outcome": "approved",
                                   "payment_ref": "pay-1"})
        h.conn.execute("UPDATE kiosk_orders SET status = 'ready' WHERE order_id = ?",
                       (order["order_id"],))
    finally:
        h.close()
    return order


def _clerk(db: Path, user: tuple[str, str] = STAFF):
    create_user(db, *user, "staff" if user == STAFF else "manager")
    c = create_app({"TESTING": True, "DB_PATH": str(db), "SECRET_KEY": "t"}).test_client()
    login(c, user)
    c.token = csrf_token(c, "/pickups/scan/")  # type: ignore[attr-defined]
    return c


def _jpeg(text: str, size: int = 1280, blur: float = 0.0, noise: int = 0) -> bytes:
    """A camera-like JPEG: the code in a larger, slightly soft, grainy picture."""
    qr = io.BytesIO()
    segno.make(text, error="m").save(qr, kind="png", scale=8, border=4)
    code = Image.open(qr).convert("RGB")
    scene = Image.new("RGB", (size, size * 3 // 4), (190, 180, 170))
    scene.paste(code, (size // 3, size // 6))
    if blur:
        scene = scene.filter(ImageFilter.GaussianBlur(blur))
    if noise:  # sensor grain, seeded: the same picture every run
        grain = Image.frombytes("L", scene.size, random.Random(7).randbytes(
            scene.width * scene.height)).convert("RGB")
        scene = Image.blend(scene, grain, noise / 100)
    out = io.BytesIO()
    scene.save(out, "JPEG", quality=90)
    return out.getvalue()


def _frame(c, data: bytes, mimetype: str = "image/jpeg", token: str | None = None):
    return c.post("/pickups/scan/frame", data=data, content_type=mimetype,
                  headers={"X-CSRFToken": c.token if token is None else token})


def _status(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT status FROM kiosk_orders").fetchone()[0]
    finally:
        conn.close()


def test_a_frame_showing_the_pickup_qr_shows_the_order_and_collects_nothing(tmp_path):
    order = _ready_order(tmp_path)
    c = _clerk(tmp_path / "edge.db")
    page = c.get("/pickups/scan/").get_data(as_text=True)
    assert 'id="pickup-camera"' in page and "<script" not in page.split("</head>")[1]
    frame = _jpeg(f"VITRINE-PICKUP:{order['order_id']}:{order['pickup_code']}", blur=1.2,
                  noise=12)
    assert len(frame) > 64 * 1024  # bigger than a form may be: a real camera frame
    r = _frame(c, frame)
    assert r.status_code == 200, r.get_data(as_text=True)
    shown = r.get_json()
    assert shown["order_id"] == order["order_id"] and shown["collectable"] is True
    assert shown["code"] == order["pickup_code"]
    assert shown["lines"] == ["1 × Trail shoe", "3 × Kettle"]
    assert "C7" not in shown["customer"]  # staff see customers masked
    assert _status(tmp_path / "edge.db") == "ready"  # the camera alone collects nothing
    # Staff confirm: the existing collect route, with what the frame answered.
    r = c.post("/pickups/collect", data={"csrf_token": c.token, "order_id": shown["order_id"],
                                         "pickup_code": shown["code"]})
    assert r.status_code == 200 and 'id="collected"' in r.get_data(as_text=True)
    assert _status(tmp_path / "edge.db") == "collected"
    again = _frame(c, frame).get_json()  # shown again, but no longer collectable
    assert again["collectable"] is False and "collected" in again["error"]


def test_a_pay_at_pickup_web_order_is_collected_only_with_the_payment_taken(tmp_path):
    h = StoreHarness(tmp_path)
    try:  # a web order to pay at the counter: placed, channel web
        order = h.ask(KIOSK, "order_place", {
            "client_order_id": "web-1", "lines": [{"gtin": GTIN, "quantity": 1}],
            "fulfilment": {"type": "click_and_collect"}})
        h.conn.execute("UPDATE kiosk_orders SET channel = 'web' WHERE order_id = ?",
                       (order["order_id"],))
    finally:
        h.close()
    c = _clerk(tmp_path / "edge.db")
    shown = _frame(c, _jpeg(f"VITRINE-PICKUP:{order['order_id']}:{order['pickup_code']}")
                   ).get_json()
    assert shown["status"] == "placed" and shown["pay_at_pickup"] is True
    assert shown["collectable"] is True and shown["error"] is None
    form = {"csrf_token": c.token, "order_id": shown["order_id"], "pickup_code": shown["code"]}
    r = c.post("/pickups/collect", data=form)  # without saying the payment was taken
    assert r.status_code == 400 and _status(tmp_path / "edge.db") == "placed"
    r = c.post("/pickups/collect", data={**form, "take_payment": "1"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert _status(tmp_path / "edge.db") == "collected"


def test_frames_without_a_pickup_code_and_bad_frames(tmp_path):
    order = _ready_order(tmp_path)
    c = _clerk(tmp_path / "edge.db")
    blank = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 120, 120)).save(blank, "JPEG")
    assert _frame(c, blank.getvalue()).get_json() == {"found": False}
    other = _frame(c, _jpeg("https://example.com/not-a-pickup")).get_json()
    assert other["found"] and "not a pickup QR" in other["error"] and "order_id" not in other
    wrong_code = "000000" if order["pickup_code"] != "000000" else "111111"
    wrong = _frame(c, _jpeg(f"VITRINE-PICKUP:{order['order_id']}:{wrong_code}")).get_json()
    assert "Wrong pickup code" in wrong["error"] and "order_id" not in wrong
    # Not a picture: a clear 400 and counted; the wrong type: 415; no CSRF header: 400.
    assert _frame(c, b"x", mimetype="text/plain").status_code == 415
    r = _frame(c, b"<svg onload=alert(1)>")
    assert r.status_code == 400 and "not a PNG or JPEG" in r.get_json()["error"]
    assert _frame(c, _jpeg("VITRINE-PICKUP:x:123456"), token="").status_code == 400
    page = c.get("/pickups/scan/").get_data(as_text=True)
    assert "refused as not a picture: 2." in page
    # The last refused frame is kept for inspection: its fingerprint, escaped.
    last = re.search(r'id="last-bad-frame">([^<]*)<', page).group(1)
    assert "21 bytes" in last and "3c 73 76 67" in last and "onload" not in last
    assert _status(tmp_path / "edge.db") == "ready"


def test_a_store_scanner_at_the_desk_reads_the_pickup_qr(edge, device):
    """qr-01 is a qr_scanner on the broker: its read reaches the scan page's poll."""
    db = Path(edge.cfg.db_path)
    c = _clerk(db, MANAGER)
    conn = sqlite3.connect(db, isolation_level=None)
    now = time.time()
    conn.execute(
        "INSERT INTO kiosk_orders (order_id, device_id, client_order_id, customer_id, status,"
        " total_cents, currency, pickup_code, payload, created_at, updated_at) VALUES"
        " ('ord-desk-1', 'kiosk-01', 'c1', 'C9', 'ready', 3999, 'EUR', '424242', ?, ?, ?)",
        ('{"lines": [{"gtin": "04006381333931", "name": "Kettle", "quantity": 1}],'
         ' "fulfilment": {"type": "click_and_collect"}}', now, now))
    conn.close()
    after = c.get("/pickups/scan/desk?after=0").get_json()["after"]
    assert c.get(f"/pickups/scan/desk?after={after}").get_json() == {"found": False,
                                                                      "after": after}
    # The scanner prefixes an AIM identifier and a CR, as real ones do.
    device("qr-01").send("qr", {"text": "]Q1VITRINE-PICKUP:ord-desk-1:424242\r"})
    got: dict = {}

    def read() -> bool:
        got.update(c.get(f"/pickups/scan/desk?after={after}").get_json())
        return bool(got.get("found"))

    wait_until(read, timeout=10)
    assert got["order_id"] == "ord-desk-1" and got["collectable"] is True
    assert got["scanner"] == "qr-01" and got["lines"] == ["1 × Kettle"]
    # Read once: the next poll starts after it.
    assert c.get(f"/pickups/scan/desk?after={got['after']}").get_json()["found"] is False
    for bad in ("-1", "abc", "9" * 40):
        assert c.get(f"/pickups/scan/desk?after={bad}").status_code == 200


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=3000),
                      st.binary(max_size=3000).map(lambda b: b"\xff\xd8\xff\xe0" + b),
                      st.binary(max_size=3000).map(lambda b: b"\x89PNG\r\n\x1a\n" + b)),
       mimetype=st.sampled_from(["image/jpeg", "image/png"]))
def test_any_frame_body_is_an_answer_never_a_crash(scan_clerk, body, mimetype):
    r = _frame(scan_clerk, body, mimetype=mimetype)
    assert r.status_code in (200, 400), r.status_code
    answer = r.get_json()
    assert answer == {"found": False} or "error" in answer or "order_id" in answer


@pytest.fixture
def scan_clerk(tmp_path: Path):
    _ready_order(tmp_path)
    return _clerk(tmp_path / "edge.db")
