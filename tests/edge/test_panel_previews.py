"""The screens page's live preview, end to end: a real player -> Mosquitto -> edge -> panel.

The player (portrait profile, its device session, the preview sink the CLI uses)
publishes thumbnails of what it shows; the edge keeps the latest; the manager's
panel serves it as a JPEG that decodes to the frame's shape, names its age, tells open
pages over the live stream, escapes what a screen sends, and staff cannot open it.
"""

from __future__ import annotations

import json
import re
import time
from io import BytesIO

import pytest
from PIL import Image

from contract.playlists import parse_playlists
from contract.session import DeviceSession
from edge.panel import create_app
from edge.panel.users import create_user
from signage.cache import ScreenCache
from signage.player import Player
from signage.preview import PreviewSink
from signage.profiles import PORTRAIT
from signage.sinks import DiskSink

from .conftest import make_client, query, wait_until
from .panel_fixtures import MANAGER, STAFF, login
from .test_screen_previews import jpeg, preview

pytestmark = pytest.mark.integration
DOC = {"playlists": [{"id": "p", "zones": ["*"], "items": [
    {"kind": "text", "id": "bienvenue", "title": "Bienvenue", "body": "Écran portrait",
     "duration_s": 60}]}]}


def test_manager_sees_a_live_preview_of_what_the_screen_shows(edge, broker, tmp_path):
    create_user(edge.cfg.db_path, *MANAGER, "manager")
    create_user(edge.cfg.db_path, *STAFF, "staff")
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "PANEL_STREAM_MAX_S": 1.0},
                     node=edge)
    manager, clerk, nobody = app.test_client(), app.test_client(), app.test_client()
    login(manager, MANAGER)
    login(clerk, STAFF)
    session = DeviceSession("127.0.0.1", broker.port, broker.store_id, "sign-01", "sign-01-pw",
                            kind="signage")
    disk = DiskSink(tmp_path / "frames", "sign-01")
    sink = PreviewSink(disk, lambda p: session.publish_json("preview", p),
                       lambda: session.connected, interval_s=0.5)
    player = Player("sign-01", "shoes", PORTRAIT, ScreenCache(tmp_path / "cache"), sink)
    player.set_playlists(parse_playlists(DOC))
    assert session.start(wait=10)
    try:
        player.tick()
        assert wait_until(lambda: sink.poll() or sink.sent, 10)
        wait_until(lambda: query(edge.cfg.db_path, "SELECT 1 FROM screen_previews"), 10)
        r = manager.get("/screens/sign-01/preview.jpg")
        assert r.status_code == 200 and r.mimetype == "image/jpeg"
        assert r.headers["Cache-Control"] == "no-store"
        thumb = Image.open(BytesIO(r.data))
        frame = Image.open(disk.frame_path)
        assert thumb.format == "JPEG" and frame.size == (1080, 1920)
        assert abs(thumb.width / thumb.height - frame.width / frame.height) < 0.01
        assert max(thumb.size) <= 320
        html = manager.get("/screens/").get_data(as_text=True)
        cell = re.search(r'<td class="preview">.*?</td>', html, re.S).group(0)
        assert 'src="/screens/sign-01/preview.jpg?v=' in cell and "bienvenue" in cell
        assert re.search(r'class="preview-age">\d+ s<', cell)
        # open pages learn of new previews on the live stream (managers only)
        body = manager.get("/live/stream").get_data(as_text=True)
        statuses = [json.loads(m) for m in re.findall(r"event: status\ndata: (.*)\n", body)]
        assert statuses and "sign-01" in statuses[0]["previews"]
        staff_body = clerk.get("/live/stream").get_data(as_text=True)
        assert "previews" not in staff_body
        # role: staff are refused, strangers sent to log in
        assert clerk.get("/screens/sign-01/preview.jpg").status_code == 403
        r = nobody.get("/screens/sign-01/preview.jpg")
        assert r.status_code == 302 and "/auth/login" in r.headers["Location"]
        none = manager.get("/screens/sign-99/preview.jpg")  # no preview: a placeholder
        assert none.status_code == 200 and none.headers["X-Vitrine-Preview"] == "none"
        assert "X-Vitrine-Preview" not in manager.get("/screens/sign-01/preview.jpg").headers
    finally:
        player.close()
        session.close()
    # A screen that sends markup as its item: shown as text, never as markup.
    hostile = make_client(broker.port, "sign-01", "sign-01-pw")
    try:
        msg = {"msg_id": "evil-1", "ts": time.time() + 1,
               **preview(item_id="<script>alert('x')</script>", image=jpeg((320, 180)))}
        hostile.publish(f"vitrine/v1/{broker.store_id}/devices/sign-01/preview",
                        json.dumps(msg), qos=1).wait_for_publish(5)
        wait_until(lambda: query(edge.cfg.db_path, "SELECT 1 FROM screen_previews WHERE "
                                 "item_id LIKE '<script>%'"), 10)
        html = manager.get("/screens/").get_data(as_text=True)
        assert "&lt;script&gt;alert(" in html and "<script>alert(" not in html
    finally:
        hostile.disconnect()
        hostile.loop_stop()


def _publish_preview(client, store: str, n: int, shade: int) -> None:
    msg = {"msg_id": f"live-{n}", "ts": time.time(),
           **preview(item_id=f"item-{n}", image=jpeg((320, 180), shade))}
    client.publish(f"vitrine/v1/{store}/devices/sign-01/preview", json.dumps(msg),
                   qos=1).wait_for_publish(5)


def test_the_screens_page_reloads_a_newer_preview_live_in_chromium(edge_config, broker):
    """An open screens page swaps in each newer preview (the live stream's status event)
    and counts its age, without a reload: in Debian's headless Chromium."""
    import dataclasses

    from playwright.sync_api import expect, sync_playwright

    from edge.node import EdgeNode
    from vitrine.broker import free_port

    from .test_panel_browser import CHROMIUM, CHROMIUM_ARGS, TABLET

    cfg = dataclasses.replace(edge_config, panel_port=free_port())
    node = EdgeNode(cfg)
    create_user(cfg.db_path, *MANAGER, "manager")
    node.start()
    screen = make_client(broker.port, "sign-01", "sign-01-pw")
    try:
        _publish_preview(screen, broker.store_id, 1, 40)
        wait_until(lambda: query(cfg.db_path, "SELECT 1 FROM screen_previews"), 10)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         timeout=20_000, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=TABLET)
                page.set_default_timeout(10_000)
                page.goto(node.panel_url + "/screens/")
                page.fill("#username", MANAGER[0])
                page.fill("#password", MANAGER[1])
                page.click("form.login button[type=submit]")
                img = page.locator("figure[data-screen='sign-01'] img")
                expect(img).to_have_attribute("src", re.compile(r"preview\.jpg\?v="))
                first = img.get_attribute("src")
                expect(page.locator("#live-dot.on")).to_have_count(1)  # stream open
                _publish_preview(screen, broker.store_id, 2, 200)
                expect(img).not_to_have_attribute("src", first, timeout=15_000)
                page.wait_for_function(
                    "() => { const i = document.querySelector(\"figure[data-screen='sign-01']"
                    " img\"); return i.complete && i.naturalWidth === 320; }")
                expect(page.locator("figure[data-screen='sign-01'] .preview-age")).to_have_text(
                    re.compile(r"^\d+ s$"))
            finally:
                browser.close()
    finally:
        screen.disconnect()
        screen.loop_stop()
        node.stop()
