"""The panel in a real browser: Debian's headless Chromium, driven by Playwright.

A real edge node on the real Mosquitto serves the panel on a free port; a device
sends one good tap and one garbage message; the manager logs in, sees the
quarantined message on the dashboard, opens it and marks it reviewed. Playwright's
own browser downloads are not used: the system ``/usr/bin/chromium`` is.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from edge.node import EdgeNode
from edge.panel.users import create_user
from vitrine.broker import free_port

from .conftest import GTIN, query, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
GARBAGE = b"\x00\xff<b>not json</b> at all"
PASSWORD = "browser-test-password"


@pytest.mark.integration
def test_manager_reviews_a_quarantined_message_in_chromium(edge_config, device, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(apt-get install -y chromium, or scripts/system-deps.sh test)")
    from playwright.sync_api import expect, sync_playwright

    cfg = dataclasses.replace(edge_config, panel_port=free_port())
    node = EdgeNode(cfg)  # migrated: the users table exists
    create_user(cfg.db_path, "boss", PASSWORD, "manager")
    node.start()
    try:
        assert node.panel_url == f"http://127.0.0.1:{cfg.panel_port}"
        device("qr-01").send("qr", {"text": f"https://id.gs1.org/01/{GTIN}"})
        device("nfc-01").send("nfc", GARBAGE)
        wait_until(lambda: node.metrics.get("quarantined") == 1
                   and node.metrics.get("interest") == 1, timeout=10)
        (qid,) = query(cfg.db_path, "SELECT id FROM quarantine")[0]

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=CHROMIUM_ARGS, timeout=20_000)
            try:
                page = browser.new_page()
                page.set_default_timeout(10_000)
                page.goto(node.panel_url + "/")
                expect(page).to_have_url(f"{node.panel_url}/auth/login?next=/")
                page.fill("#username", "boss")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                expect(page.locator("#metric-quarantined .value")).to_have_text("1")
                expect(page.locator("#metric-interest .value")).to_have_text("1")
                expect(page.locator("#quarantine-reasons")).to_contain_text("not_json")

                page.click("text=Quarantine")
                page.click(f"#quarantine a[href='/quarantine/{qid}']")
                expect(page.locator("#reason")).to_have_text("not_json")
                # Shown as text, never as markup: no <b> element from the payload.
                expect(page.locator("#payload-text")).to_contain_text("<b>not json</b>")
                assert page.locator("#payload-text b").count() == 0
                expect(page.locator("#payload-hex")).to_contain_text("00 ff 3c 62 3e")
                expect(page.locator("#reviewed")).to_have_text("not reviewed")
                page.click("#mark-reviewed")
                expect(page.locator("#reviewed")).to_contain_text("reviewed by boss")
                expect(page.locator("#mark-reviewed")).to_have_count(0)

                shot = tmp_path / "quarantine.png"
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
        assert query(cfg.db_path, "SELECT reviewed, reviewed_by FROM quarantine") == [
            (1, "boss")]
    finally:
        t0 = time.monotonic()
        node.stop()
        assert time.monotonic() - t0 < 5, "the panel thread did not shut down promptly"
