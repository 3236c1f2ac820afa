"""Collect an order by its pickup QR with the tablet's camera, in headless Chromium.

The order is placed and paid through the edge's real request router
(:class:`StoreHarness`), then a real edge node serves the panel over HTTPS from
the same database. Chromium gets a FAKE CAMERA fed a video file of the rendered
pickup QR (``--use-file-for-fake-video-capture``, a Y4M written here from a
segno QR with Pillow): the page's script grabs frames with ``getUserMedia``,
posts them as JPEG, the edge reads the code with zbar, the clerk confirms, and
the order is collected in the database. A tablet viewport; screenshot saved
(``VITRINE_SCREENSHOTS=DIR`` keeps it, as ``panel-collect.png``).
"""

from __future__ import annotations

import dataclasses
import io
import sqlite3
from pathlib import Path

import pytest
import segno
from PIL import Image

from edge.node import EdgeNode
from edge.panel.users import create_user
from vitrine.broker import free_port

from .conftest import GTIN, GTIN_2, query
from .store_harness import StoreHarness
from .test_panel_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TABLET,
    _shot,
    _spki_pin,
    store_ca,  # noqa: F401  (module fixture)
)

pytestmark = pytest.mark.integration
PASSWORD = "camera-test-password"


def write_y4m(path: Path, text: str, size: tuple[int, int] = (640, 480),
              frames: int = 3) -> Path:
    """A few frames of a QR code held in front of the camera, as a Y4M (4:2:0) file."""
    qr = io.BytesIO()
    segno.make(text, error="m").save(qr, kind="png", scale=6, border=4)
    code = Image.open(qr).convert("RGB")
    scene = Image.new("RGB", size, (205, 200, 190))  # a counter top, not a white page
    scene.paste(code, ((size[0] - code.width) // 2, (size[1] - code.height) // 2))
    y, cb, cr = scene.convert("YCbCr").split()
    half = (size[0] // 2, size[1] // 2)
    frame = b"FRAME\n" + y.tobytes() + cb.resize(half, Image.BOX).tobytes() + \
        cr.resize(half, Image.BOX).tobytes()
    header = f"YUV4MPEG2 W{size[0]} H{size[1]} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * frames)
    return path


def test_write_y4m_makes_frames_zbar_reads(tmp_path: Path):
    """The fake camera's file holds what a camera would see: decodable 4:2:0 frames."""
    from contract.qr_image import decode_pil

    path = write_y4m(tmp_path / "qr.y4m", "VITRINE-PICKUP:abc:123456", frames=2)
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    assert header.startswith(b"YUV4MPEG2 W640 H480")
    frame_len = len(b"FRAME\n") + 640 * 480 * 3 // 2
    assert len(rest) == 2 * frame_len
    luma = Image.frombytes("L", (640, 480), rest[6:6 + 640 * 480])
    assert [d.text for d in decode_pil(luma)] == ["VITRINE-PICKUP:abc:123456"]


def test_clerk_collects_an_order_shown_to_the_tablet_camera(edge_config, broker, store_ca,  # noqa: F811
                                                            tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium")
    from playwright.sync_api import expect, sync_playwright

    h = StoreHarness(tmp_path)  # the same database the edge node opens below
    try:
        session = h.identify("kiosk-01", "C7")
        order = h.ask("kiosk-01", "order_place", {
            "client_order_id": "cam-1", "session_id": session,
            "lines": [{"gtin": GTIN, "quantity": 1}, {"gtin": GTIN_2, "quantity": 2}],
            "fulfilment": {"type": "click_and_collect"}})
        assert h.ask("kiosk-01", "order_pay", {"order_id": order["order_id"],
                                               "outcome": "approved",
                                               "payment_ref": "pay-cam"})["status"] == "paid"
    finally:
        h.close()
    conn = sqlite3.connect(edge_config.db_path, isolation_level=None)
    conn.execute("UPDATE kiosk_orders SET status = 'ready' WHERE order_id = ?",
                 (order["order_id"],))  # prepared: the clerk fetched the goods
    conn.close()
    video = write_y4m(tmp_path / "pickup.y4m",
                      f"VITRINE-PICKUP:{order['order_id']}:{order['pickup_code']}")

    cfg = dataclasses.replace(edge_config, panel_port=free_port(),
                              panel_tls_cert=store_ca.cert, panel_tls_key=store_ca.key)
    node = EdgeNode(cfg)
    create_user(cfg.db_path, "clerk", PASSWORD, "staff")
    node.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, timeout=20_000,
                args=[*CHROMIUM_ARGS,
                      f"--ignore-certificate-errors-spki-list={_spki_pin(store_ca.cert)}",
                      "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-video-capture={video}"])
            try:
                context = browser.new_context(viewport=TABLET, has_touch=True, is_mobile=True)
                page = context.new_page()
                page.set_default_timeout(15_000)
                page.goto(node.panel_url + "/pickups/")
                page.fill("#username", "clerk")
                page.fill("#password", PASSWORD)
                page.click("form.login button[type=submit]")
                page.click("#camera-link")
                # The camera sees the QR; the edge reads it; the order is shown, not collected.
                expect(page.locator("#scan-short")).to_have_text(order["order_id"][:8])
                expect(page.locator("#scan-lines")).to_contain_text("Trail shoe")
                expect(page.locator("#confirm-button")).to_be_enabled()
                assert query(cfg.db_path, "SELECT status FROM kiosk_orders") == [("ready",)]
                assert "C7" not in page.locator("#scan-customer").inner_text()  # masked
                _shot(page, "collect", tmp_path)
                page.click("#confirm-button")
                expect(page.locator("#collected")).to_contain_text(order["order_id"][:8])
            finally:
                browser.close()
        assert query(cfg.db_path, "SELECT status FROM kiosk_orders") == [("collected",)]
    finally:
        node.stop()
