"""Click & collect in the panel: kiosk orders through the real request router, then
prepare -> ready -> collected by the pickup QR (typed by a scanner or photographed)."""
# ruff: noqa: F811

from __future__ import annotations

import io
import re
from pathlib import Path

import segno

from edge.panel import create_app
from edge.panel.users import create_user

from .conftest import GTIN, GTIN_2
from .panel_fixtures import STAFF, csrf_token, login
from .store_harness import StoreHarness

KIOSK = "kiosk-01"


def _order(h: StoreHarness, client_id: str = "c1") -> dict:
    session = h.identify(KIOSK, "C7")
    placed = h.ask(KIOSK, "order_place", {
        "client_order_id": client_id, "session_id": session,
        "lines": [{"gtin": GTIN, "quantity": 2}, {"gtin": GTIN_2, "quantity": 1}],
        "fulfilment": {"type": "click_and_collect"}})
    paid = h.ask(KIOSK, "order_pay", {"order_id": placed["order_id"], "outcome": "approved",
                                      "payment_ref": "pay-1"})
    assert paid["status"] == "paid"
    return placed


def _clerk(db: Path):
    create_user(db, *STAFF, "staff")
    app = create_app({"TESTING": True, "DB_PATH": str(db), "SECRET_KEY": "t"})
    c = app.test_client()
    login(c, STAFF)
    return c


def test_prepare_ready_collect_by_qr(tmp_path):
    h = StoreHarness(tmp_path)
    try:
        order = _order(h)
    finally:
        h.close()
    c = _clerk(tmp_path / "edge.db")
    html = c.get("/pickups/").get_data(as_text=True)
    assert f'data-order="{order["order_id"]}"' in html and "Trail shoe" in html
    assert "C7" not in html  # staff see the customer masked
    token = csrf_token(c, "/pickups/")
    for frm in ("paid", "preparing"):
        r = c.post(f"/pickups/{order['order_id']}/advance", data={"csrf_token": token,
                                                                  "from": frm})
        assert r.status_code == 302
    # The same step twice (two tablets): the second is refused, nothing changes.
    r = c.post(f"/pickups/{order['order_id']}/advance", data={"csrf_token": token,
                                                              "from": "preparing"})
    assert r.status_code == 409
    wrong = f"VITRINE-PICKUP:{order['order_id']}:000000"
    if order["pickup_code"] == "000000":
        wrong = f"VITRINE-PICKUP:{order['order_id']}:111111"
    r = c.post("/pickups/collect", data={"csrf_token": token, "code": wrong})
    assert r.status_code == 400 and "Wrong pickup code" in r.get_data(as_text=True)
    qr = io.BytesIO()
    segno.make(f"VITRINE-PICKUP:{order['order_id']}:{order['pickup_code']}").save(
        qr, kind="png", scale=6)
    r = c.post("/pickups/collect", content_type="multipart/form-data",
               data={"csrf_token": token, "photo": (io.BytesIO(qr.getvalue()), "qr.png")})
    assert r.status_code == 200 and 'id="collected"' in r.get_data(as_text=True)
    r = c.post("/pickups/collect", data={"csrf_token": token, "code": f"VITRINE-PICKUP:"
                                         f"{order['order_id']}:{order['pickup_code']}"})
    assert r.status_code == 400  # collected once
    assert re.search(rf'data-order="{order["order_id"]}"[^>]*class="pickup-collected"',
                     c.get("/pickups/").get_data(as_text=True))


def test_a_customer_with_an_order_waiting_identifies_and_every_page_hears(tmp_path):
    from .test_panel_manager import _read_events

    h = StoreHarness(tmp_path)
    try:
        order = _order(h)
        create_user(tmp_path / "edge.db", *STAFF, "staff")
        app = create_app({"TESTING": True, "DB_PATH": str(tmp_path / "edge.db"),
                          "SECRET_KEY": "t"})
        c = app.test_client()
        login(c, STAFF)
        resp = c.get("/live/stream")
        try:
            _read_events(resp, "status")
            h.identify(KIOSK, "C7")  # the customer taps their card again
            got = _read_events(resp, "pickup")
            notices = [d for name, d in got if name == "pickup"]
            assert notices and notices[0]["order"] == order["order_id"][:8]
            assert notices[0]["status"] == "paid" and "C7" not in notices[0]["customer"]
        finally:
            resp.close()
    finally:
        h.close()
