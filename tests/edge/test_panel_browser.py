"""The panel in a real browser: Debian's headless Chromium, driven by Playwright.

A real edge node on the real Mosquitto serves the panel over HTTPS (cheroot,
a certificate issued by a throw-away store CA with ``vitrine.tls``) on a free
port. On a tablet-sized viewport the manager logs in, watches a tap made by a
device appear live on the dashboard, adds a device (credentials written to the
broker's files, broker reloaded), connects that device with the password shown
once and watches it come online without reloading the page; then reviews a
quarantined message. Playwright's own browser downloads are not used: the
system ``/usr/bin/chromium`` is. Chromium is told to trust exactly the panel's
certificate (its public key pin), and Python's ``ssl`` checks the chain to the
store CA and the host name, so both halves of "HTTPS from the store CA" are
tested.

With ``VITRINE_SCREENSHOTS=DIR`` the main pages are saved there as PNG (that is
how ``docs/img/`` is made).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from edge.node import EdgeNode
from edge.panel.users import create_user
from firmware_sim.device import DeviceClient
from vitrine.broker import free_port
from vitrine.tls import issue_server_cert, make_ca

from .conftest import GTIN, query, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
GARBAGE = b"\x00\xff<b>not json</b> at all"
PASSWORD = "browser-test-password"
TABLET = {"width": 820, "height": 1180}  # a 10.9" tablet, portrait


def _spki_pin(cert: Path) -> str:
    """base64(sha256(SubjectPublicKeyInfo)): Chromium's --ignore-certificate-errors-spki-list."""
    der = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der,
                          capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _shot(page, name: str, tmp_path: Path) -> Path:
    out = Path(os.environ.get("VITRINE_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"panel-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def store_ca(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("store-ca")
    make_ca(d, days=2, bits=2048)
    return issue_server_cert(d, "panel", ["localhost", "127.0.0.1"], days=2)


@pytest.mark.integration
def test_manager_runs_the_store_from_a_tablet_in_chromium(edge_config, broker, device,
                                                          store_ca, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(apt-get install -y chromium, or scripts/system-deps.sh test)")
    from playwright.sync_api import expect, sync_playwright

    cfg = dataclasses.replace(edge_config, panel_port=free_port(),
                              panel_tls_cert=store_ca.cert, panel_tls_key=store_ca.key,
                              panel_broker_dir=broker.data_dir)
    node = EdgeNode(cfg)  # migrated: the users table exists
    create_user(cfg.db_path, "boss", PASSWORD, "manager")
    node.start()
    new_device: DeviceClient | None = None
    try:
        url = node.panel_url
        assert url == f"https://127.0.0.1:{cfg.panel_port}"
        # The chain and the name check out against the store CA, as a tablet would check.
        ctx = ssl.create_default_context(cafile=str(store_ca.ca))
        with socket.create_connection(("127.0.0.1", cfg.panel_port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")

        device("nfc-01").send("nfc", GARBAGE)
        wait_until(lambda: node.metrics.get("quarantined") == 1, timeout=10)
        (qid,) = query(cfg.db_path, "SELECT id FROM quarantine")[0]

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, timeout=20_000,
                args=[*CHROMIUM_ARGS,
                      f"--ignore-certificate-errors-spki-list={_spki_pin(store_ca.cert)}"])
            try:
                page = browser.new_page(viewport=TABLET, has_touch=True, is_mobile=True)
                page.set_default_timeout(10_000)
                page.goto(url + "/")
                expect(page).to_have_url(f"{url}/auth/login?next=/")
                page.fill("#username", "boss")
                page.fill("#password", PASSWORD)
                page.click("form.login button[type=submit]")
                expect(page.locator("#metric-quarantined .value")).to_have_text("1")
                expect(page.locator("#live-dot.on")).to_have_count(1)  # stream open

                # A tap on the shelf appears on the open dashboard, no reload.
                device("qr-01").send("qr", {"text": f"https://id.gs1.org/01/{GTIN}"})
                expect(page.locator("#live-events tbody tr.fresh").first).to_contain_text(
                    "Trail shoe")
                expect(page.locator("#metric-interest .value")).to_have_text("1")  # live too
                _shot(page, "dashboard", tmp_path)

                # Add a device; its credential is shown once; it connects and comes online.
                page.click("nav >> text=Devices")
                page.fill("#new-device-id", "nfc-tab-01")
                page.select_option("#new-device-kind", "nfc_reader")
                page.click("#add-device button[type=submit]")
                password = page.locator("#created-password").inner_text()
                assert len(password) >= 24
                row = page.locator("tr[data-device='nfc-tab-01'] td.state")
                expect(row).to_have_attribute("data-status", "never_seen")
                new_device = DeviceClient("nfc-tab-01", "nfc_reader", password,
                                          store_id=broker.store_id, port=broker.port)
                assert new_device.start(wait=10), "the panel's credential did not let it in"
                expect(row).to_have_attribute("data-status", "online", timeout=15_000)
                expect(row).to_have_text("online")
                _shot(page, "devices", tmp_path)

                page.click("nav >> text=Quarantine")
                page.click(f"#quarantine a[href='/quarantine/{qid}']")
                expect(page.locator("#reason")).to_have_text("not_json")
                # Shown as text, never as markup: no <b> element from the payload.
                expect(page.locator("#payload-text")).to_contain_text("<b>not json</b>")
                assert page.locator("#payload-text b").count() == 0
                expect(page.locator("#payload-hex")).to_contain_text("00 ff 3c 62 3e")
                page.click("#mark-reviewed")
                expect(page.locator("#reviewed")).to_contain_text("reviewed by boss")

                for name in ("analytics", "operations", "prices", "users"):
                    page.click(f"nav >> text={name.capitalize()}")
                    expect(page.locator("h1")).to_be_visible()
                    if name == "analytics":  # the layout's zone names, the tap counted
                        expect(page.locator("#heatmap g[data-zone='kitchen']")).to_contain_text(
                            "Kitchen")
                        expect(page.locator("#table-products")).to_contain_text("Trail shoe")
                    _shot(page, name, tmp_path)
                page.click("#switch-lang")
                expect(page.locator("h1")).to_have_text("Utilisateurs")
                page.click("nav >> text=Tableau de bord")
                shot = _shot(page, "dashboard-fr", tmp_path)
            finally:
                browser.close()
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
        assert query(cfg.db_path, "SELECT reviewed, reviewed_by FROM quarantine") == [
            (1, "boss")]
        assert re.fullmatch(r"nfc-tab-01:\$7\$.+\n?", [
            line for line in (broker.data_dir / "passwd").read_text().splitlines(True)
            if line.startswith("nfc-tab-01:")][0])
    finally:
        if new_device is not None:
            new_device.close(flush_timeout=1)
        t0 = time.monotonic()
        node.stop()
        assert time.monotonic() - t0 < 8, "the panel thread did not shut down promptly"
