"""Screenshots of the panel on a running demo store, for the README (docs/img/).

    PYTHONPATH=. .venv/bin/python scripts/panel_screenshots.py [--out docs/img] [--warmup 45]

Starts ``vitrine demo`` (its own broker, edge, store CA and shoppers), waits for
shoppers to fill the store, then opens the printed panel URL in headless
Chromium on a tablet viewport (trusting exactly the demo's panel certificate)
and saves the main pages, the pickup queue and the playlist editor. Then it
prepares the kiosk's order (paid -> preparing -> ready, clicking the buttons)
and opens "collect with the camera" in a second Chromium whose fake camera
films that order's pickup QR (``panel-collect.png``). Nothing here is a test:
tests/edge/test_panel_browser.py and tests/edge/test_panel_pickup_camera.py are.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.edge.test_panel_browser import CHROMIUM_ARGS, TABLET, _spki_pin
from tests.edge.test_panel_pickup_camera import write_y4m

PAGES = [("dashboard", "/"), ("devices", "/devices/"), ("analytics", "/analytics/"),
         ("operations", "/operations/"), ("events", "/events/"), ("prices", "/prices/"),
         ("users", "/users/"), ("pickups", "/pickups/"), ("playlists", "/playlists/")]


def login(page, url: str, password: str) -> None:
    page.goto(url + "/auth/login")
    page.fill("#username", "manager")
    page.fill("#password", password)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("#live-dot.on")


def pickup_order(db: Path) -> tuple[str, str] | None:
    """The demo kiosk's click & collect order still to collect: (order id, pickup code)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT order_id, pickup_code FROM kiosk_orders WHERE status IN"
                           " ('paid', 'preparing', 'ready') AND json_extract(payload,"
                           " '$.fulfilment.type') = 'click_and_collect'"
                           " ORDER BY created_at DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return (row[0], row[1]) if row else None


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="docs/img")
    p.add_argument("--warmup", type=float, default=45.0)
    args = p.parse_args()
    var = Path(tempfile.mkdtemp(prefix="vitrine-shots-"))
    demo = subprocess.Popen([sys.executable, "-m", "vitrine", "demo", "--var", str(var),
                             "--speed", "30", "--duration", str(args.warmup + 60)],
                            stdout=subprocess.PIPE, text=True)
    url = password = None
    assert demo.stdout is not None
    for line in demo.stdout:
        m = re.search(r"PANEL\s+(https://\S+)\s+user manager / password (\S+)", line)
        if m:
            url, password = m.groups()
            break
    if not url:
        demo.kill()
        print("no PANEL line from the demo", file=sys.stderr)
        return 1
    # Keep reading the demo's output, or it blocks once the pipe is full.
    threading.Thread(target=lambda: [None for _ in demo.stdout], daemon=True).start()
    time.sleep(args.warmup)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            pin = _spki_pin(var / "tls" / "panel.crt")
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True,
                args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}"])
            page = browser.new_page(viewport=TABLET, has_touch=True, is_mobile=True)
            login(page, url, password)
            time.sleep(6)  # a few live rows
            for name, path in PAGES:
                if path != "/":
                    page.goto(url + path)
                page.screenshot(path=str(out / f"panel-{name}.png"), full_page=True)
                print(out / f"panel-{name}.png")
            first = page.locator("#playlist-list a").first
            if first.count():
                first.click()
                page.screenshot(path=str(out / "panel-playlist-edit.png"), full_page=True)
                print(out / "panel-playlist-edit.png")
            order = pickup_order(var / "edge.db")
            if order is None:
                print("no pickup order in the demo: no panel-collect.png", file=sys.stderr)
            else:
                page.goto(url + "/pickups/")
                row = page.locator(f"tr[data-order='{order[0]}']")
                while row.locator("form button").count() and \
                        "pickup-ready" not in (row.get_attribute("class") or ""):
                    row.locator("form button").first.click()
                    page.wait_for_load_state()
                browser.close()
                video = write_y4m(var / "pickup.y4m", f"VITRINE-PICKUP:{order[0]}:{order[1]}")
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True,
                    args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}",
                          "--use-fake-ui-for-media-stream",
                          "--use-fake-device-for-media-stream",
                          f"--use-file-for-fake-video-capture={video}"])
                page = browser.new_page(viewport=TABLET, has_touch=True, is_mobile=True)
                login(page, url, password)
                page.goto(url + "/pickups/scan/")
                page.wait_for_selector("#scan-short:not(:empty)", timeout=20_000)
                page.screenshot(path=str(out / "panel-collect.png"), full_page=True)
                print(out / "panel-collect.png")
            browser.close()
    finally:
        demo.terminate()
        demo.wait(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
