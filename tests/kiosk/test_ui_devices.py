"""The kiosk's own devices and its order screens, in a real Kivy window under Xvfb.

Against a real Mosquitto, edge (with its asset server) and central:

* a loyalty card tapped on the kiosk's own NFC reader: the kit's nfcpy loop on
  nfcpy's ``udp:`` frontend, nfcpy's tag emulation playing the card (this test
  holds it to the reader) -> the edge verifies -> the kiosk greets;
* the app's QR, rendered by segno, held to the kiosk's camera (a frame
  directory) -> pyzbar -> the edge verifies the single-use app token -> greeting;
* search -> product with its picture fetched from the edge's asset server ->
  wish-list -> cart -> store picker -> home delivery with an address that is
  first refused, then fixed (typed with Kivy's docked on-screen keyboard up, which
  covers neither a field nor "Continue") -> pay -> pickup code -> "I'm done".

And the window covers the whole screen unless ``--windowed`` (checked on what the
X server shows, not on what Kivy believes). Screenshots go to ``KIOSK_SHOTS``
when set (``docs/img`` is filled that way).
"""

from __future__ import annotations

import base64
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import segno
from PIL import Image

from contract.loyalty import issue_token
from contract.qr_image import decode_image
from edge.asset_server import AssetServer
from edge.content import add_images
from edge.demo_images import product_picture
from firmware_sim.tag_emulator import TagEmulator, free_udp_port
from kiosk.display import VirtualDisplay, start_xvfb
from tests.edge.conftest import GTIN_2, LOYALTY_KEY, query
from tests.edge.store_harness import card_ndef
from tests.kiosk.test_ui import CUSTOMER, STORE, central, display, store  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

#: The loyalty card's UID: a FeliCa IDm, what nfcpy's tag emulation plays.
CARD_UID = "03feffe0c0ffee01"
STORES = [{"id": "store-lyon", "name": "Lyon Part-Dieu", "distance_km": 4.2},
          {"id": "store-paris", "name": "Paris Opéra", "distance_km": 465}]


def start_kiosk(screen: VirtualDisplay, broker, tmp_path: Path, steps: list[dict[str, Any]],
                *extra: str) -> subprocess.Popen[str]:
    (tmp_path / "steps.json").write_text(json.dumps(steps))
    env = screen.env()
    env.update(VITRINE_KIOSK_PASSWORD="kiosk-01-pw", KIVY_HOME=str(tmp_path / "kivy"))
    shots = os.environ.get("KIOSK_SHOTS") or str(tmp_path / "shots")
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk", "--kiosk", "kiosk-01", "--port", str(broker.port),
         "--store-id", STORE, "--zones", "shoes,kitchen", "--lang", "en",
         "--cache-dir", str(tmp_path / "cache"), "--script", str(tmp_path / "steps.json"),
         "--screenshots", shots, "--result", str(tmp_path / "result.json"),
         "--exit-after-script", "--no-transitions", *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], tmp_path: Path) -> dict[str, Any]:
    try:
        _, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
    (tmp_path / "kiosk.log").write_text(stderr)  # the whole story, when a step fails
    result = tmp_path / "result.json"
    assert result.exists(), stderr[-3000:]
    out = json.loads(result.read_text())
    out["stderr"] = stderr
    out["shots"] = Path(os.environ.get("KIOSK_SHOTS") or tmp_path / "shots")
    return out


def app_qr_png(path: Path) -> Path:
    token = issue_token(LOYALTY_KEY, CUSTOMER, kind="app", now=time.time(), ttl_s=600)
    segno.make(f"https://vitrine.example/l/{token}", error="m").save(
        str(path), kind="png", scale=8, border=4)
    return path


def test_card_and_app_qr_at_the_kiosk_then_a_delivery_order(display, broker, store,  # noqa: F811
                                                            tmp_path):
    # the kettle's picture, in the edge's asset cache, served by the edge's asset server
    picture = product_picture(GTIN_2, "Kettle", "Acme", "kitchen")
    conn = sqlite3.connect(store.cfg.db_path)
    with conn:
        add_images(conn, store.assets, GTIN_2, [picture])
    conn.close()
    assets = AssetServer(store.assets).start()
    stores_file = tmp_path / "stores.json"
    stores_file.write_text(json.dumps(STORES))
    nfc = f"udp:127.0.0.1:{free_udp_port()}"
    qr = app_qr_png(tmp_path / "app-qr.png")
    steps: list[dict[str, Any]] = [
        {"wait": "greeting", "timeout": 90},      # the card, held to the reader below
        {"expect": "1500 loyalty points"},
        {"tap": "done_button"}, {"wait": "attract"},
        {"camera": str(qr)},                       # the app's QR held to the camera
        {"wait": "greeting", "timeout": 20},
        {"expect": "1500 loyalty points"},
        {"shot": "greeting"},
        {"tap": "search_button"}, {"wait": "search"},
        {"type": "kett"}, {"expect": "Kettle"},
        {"tap_text": "Kettle"}, {"wait": "product"},
        {"wait_image": "picture", "timeout": 15},  # fetched from the edge, on disk
        {"tap": "add_to_wishlist"}, {"expect": "Added to your wish-list"},
        {"shot": "product"},
        {"tap": "add_to_cart"}, {"wait": "cart"},
        {"tap": "collect_elsewhere"}, {"wait": "stores"},
        {"expect": "In stock: 11"}, {"expect": "Not enough in stock"},
        {"shot": "stores"},
        {"tap_text": "Lyon Part-Dieu"}, {"wait": "cart"},
        {"expect": "Collect at: Lyon Part-Dieu"},
        {"tap": "home_delivery"}, {"wait": "address"},
        {"fill": {"f_name": "Camille Martin", "f_line1": "12 rue de la République",
                  "f_postcode": "690"}},
        {"keyboard_clear_of": ["f_city", "address_continue"]},  # the docked keyboard
        {"tap": "address_continue"},
        {"expect": "5 digits, e.g. 69003"}, {"expect": "Required"},
        {"shot": "address"},
        {"fill": {"f_postcode": "02", "f_city": "Lyon"}},
        {"tap": "address_continue"}, {"wait": "cart"},
        {"expect": "Deliver to: 12 rue de la République, 69002 Lyon"},
        {"shot": "cart"},
        {"tap": "pay"}, {"wait": "pickup", "timeout": 15},
        {"expect": "Pickup code"},
        {"shot": "pickup"},
        {"tap": "done_button"}, {"wait": "attract"},
        {"forbid": ["1500", "Camille", "69002", "Kettle", "Pickup code"]},
    ]
    proc = start_kiosk(display, broker, tmp_path, steps, "--windowed", "--size", "1280x800",
                       "--nfc", nfc, "--camera", f"dir:{tmp_path / 'camera'}",
                       "--assets-url", assets.url, "--stores", str(stores_file),
                       "--touch-keyboard")
    try:
        card = base64.b64decode(card_ndef(CUSTOMER, uid=CARD_UID))
        with TagEmulator(nfc) as emulator:  # waits until the kiosk's reader is polling
            assert emulator.present(card, CARD_UID, timeout=90).read_complete
        out = finish(proc, tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
        assets.stop()
    assert out["ok"], (out["error"], out["stderr"][-3000:])
    assert out["devices"] == {"CardReader": 1, "CameraScanner": 1}

    # identified twice: by the card (bound to its UID), then by the single-use app token
    sessions = query(store.cfg.db_path, "SELECT customer_id FROM sessions WHERE device_id = "
                                        "'kiosk-01' AND customer_id IS NOT NULL")
    assert sessions == [(CUSTOMER,), (CUSTOMER,)]
    assert query(store.cfg.db_path, "SELECT customer_id, gtin FROM kiosk_wishlist") == [
        (CUSTOMER, GTIN_2)]
    [(status, customer, payload)] = query(
        store.cfg.db_path, "SELECT status, customer_id, payload FROM kiosk_orders")
    assert (status, customer) == ("paid", CUSTOMER)
    assert json.loads(payload)["fulfilment"] == {
        "type": "home_delivery", "address": {"name": "Camille Martin", "postcode": "69002",
                                             "line1": "12 rue de la République",
                                             "city": "Lyon"}}

    # the product page showed the edge's picture (its background colour fills the frame)
    shot = Image.open(out["shots"] / "product.png").convert("RGB")
    bg = Image.open(io.BytesIO(picture)).convert("RGB").getpixel((2, 2))
    counts = {color: n for n, color in shot.getcolors(maxcolors=1 << 24)}
    assert counts.get(bg, 0) > 5_000
    assert (out["shots"] / "stores.png").stat().st_size > 10_000
    [decoded] = decode_image((out["shots"] / "pickup.png").read_bytes())
    assert decoded.text.startswith("VITRINE-PICKUP:")


def test_full_screen_by_default_covers_the_screen(broker, tmp_path):
    """No --windowed: the X server shows the kiosk edge to edge (with no window manager,
    Kivy's own full screen only sized its view; the window kept its configured size)."""
    broker.add("kiosk-01", "kiosk")
    small = start_xvfb("1024x600x24")  # not the kiosk's windowed size: it must follow
    try:
        proc = start_kiosk(small, broker, tmp_path, [{"sleep": 0.3},
                                                     {"grab_screen": "x-screen"}],
                           "--camera", "kivy:7")  # no such camera: said, and it runs on
        out = finish(proc, tmp_path)
    finally:
        small.stop()
    assert out["ok"], (out["error"], out["stderr"][-3000:])
    assert out["window_size"] == [1024, 600]
    assert "camera kivy:7 unavailable" in out["stderr"] and out["devices"] == {}
    screen = Image.open(out["shots"] / "x-screen.png").convert("RGB")
    assert screen.size == (1024, 600)
    attract = (23, 41, 71)  # the attract loop's background, 0.09/0.16/0.28
    for xy in ((0, 0), (1023, 0), (0, 599), (1023, 599), (512, 2)):
        assert all(abs(a - b) <= 2 for a, b in zip(screen.getpixel(xy), attract, strict=True)), xy
