"""The kiosk in a real Kivy window under Xvfb, against a real Mosquitto, edge and central.

A simulated shopper (``kiosk/driver.py``) touches the real window: taps a
loyalty card on the kiosk's reader, is greeted with the points central holds,
searches, opens a product, orders it with points, pays, gets a pickup QR,
says "I'm done". Screenshots of each screen are saved under the test's
directory (``KIOSK_SHOTS`` overrides: ``docs/img`` is filled that way).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central.credentials import issue
from central.feeds.api import load
from contract.qr_image import decode_image
from edge.config import load_config
from edge.node import EdgeNode
from kiosk.display import VirtualDisplay, start_xvfb
from tests.central.conftest import channel_event, grant, make_central
from tests.central.http import call
from tests.edge.conftest import GTIN, GTIN_2, LAYOUT, LOYALTY_KEY, query, wait_until
from tests.edge.store_harness import CARD_UID, card_ndef

pytestmark = pytest.mark.integration

STORE = LAYOUT["store_id"]
CUSTOMER = "C0001234"
SCREENS = ("attract", "greeting", "search", "product", "cart", "pickup")


@pytest.fixture(scope="module")
def display() -> Iterator[VirtualDisplay]:
    d = start_xvfb()
    yield d
    d.stop()


@pytest.fixture
def central(tmp_path: Path):
    c = make_central({"sqlite_path": str(tmp_path / "central.db")})
    token = issue(c.db, "store", STORE)
    web = issue(c.db, "channel", "web")
    grant(c, CUSTOMER, tracking=True)  # first: events before consent are kept anonymous
    status, body = c.post_events([
        channel_event("loyalty", "web", customer_id=CUSTOMER, points=1500,
                      reference={"kind": "purchase", "id": "web-purchase-1"}),
        channel_event("interest", "web", customer_id=CUSTOMER, session_id="w1",
                      gtin=GTIN)], token=web)
    assert status == 200, body
    yield c, token
    for s in c.servers:
        s.stop()
    c.db.close()


@pytest.fixture
def store(broker, tmp_path: Path, central) -> Iterator[EdgeNode]:
    c, token = central
    layout_file = tmp_path / "layout.json"
    layout_file.write_text(json.dumps(LAYOUT))
    broker.add_many([(d["id"], d["kind"]) for d in LAYOUT["devices"]])
    cfg = load_config(env={}, store_id=STORE, db_path=tmp_path / "edge.db",
                      mqtt_port=broker.port, mqtt_password="edge-pw",
                      loyalty_keys="k1:" + LOYALTY_KEY.hex(), layout_path=layout_file,
                      central_url=c.url, store_token=token, panel_port=0)
    now = time.time()  # central's stock feed: this store, another, the web warehouse
    load(c.db, "stock", {"items": [
        {"location": loc, "gtin": GTIN_2, "quantity": q, "observed_at": now}
        for loc, q in ((STORE, 6), ("store-lyon", 11), ("web-warehouse", 240))]})
    node = EdgeNode(cfg).start()
    wait_until(lambda: query(cfg.db_path, "SELECT count(*) FROM sync_stock")[0][0] == 3)
    yield node
    node.stop()


def run_kiosk(display: VirtualDisplay, broker, tmp_path: Path, steps: list[dict[str, Any]],
              *extra: str) -> dict[str, Any]:
    script = tmp_path / "steps.json"
    script.write_text(json.dumps(steps))
    result = tmp_path / "result.json"
    shots = Path(os.environ.get("KIOSK_SHOTS") or tmp_path / "shots")
    env = display.env()
    env.update(VITRINE_KIOSK_PASSWORD="kiosk-01-pw", KIVY_HOME=str(tmp_path / "kivy"))
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk", "--kiosk", "kiosk-01", "--port", str(broker.port),
         "--store-id", STORE, "--windowed", "--size", "1280x800", "--zones", "shoes,kitchen",
         "--lang", "en", "--script", str(script), "--screenshots", str(shots),
         "--result", str(result), "--exit-after-script", *extra],
        env=env, capture_output=True, text=True, timeout=180)
    assert result.exists(), proc.stderr[-3000:]
    out = json.loads(result.read_text())
    out["shots"] = shots
    out["stderr"] = proc.stderr
    return out


def test_identify_search_product_order_pickup_in_a_real_window(display, broker, store,
                                                               central, tmp_path):
    c, token = central
    steps: list[dict[str, Any]] = [
        {"shot": "attract"},
        {"card": {"uid": CARD_UID, "ndef": card_ndef(CUSTOMER)}},
        {"wait": "greeting", "timeout": 15},
        {"expect": "1500 loyalty points"},
        {"expect": "Trail shoe"},          # recently viewed on the web, shown with consent
        {"shot": "greeting"},
        {"tap": "search_button"}, {"wait": "search"},
        {"type": "kett"},
        {"expect": "Kettle"},
        {"shot": "search"},
        {"tap_text": "Kettle"}, {"wait": "product"},
        {"expect": "In stock here: 6"},
        {"shot": "product"},
        {"tap": "add_to_cart"}, {"wait": "cart"},
        {"tap": "use_points"},
        {"expect": "Pay €24.99"},          # 1500 points = €15 off, as the edge will price it
        {"shot": "cart"},
        {"tap": "pay"}, {"wait": "pickup", "timeout": 10},
        {"expect": "Pickup code"},
        {"shot": "pickup"},
        {"tap": "done_button"}, {"wait": "attract"},
        {"forbid": ["1500", "Trail shoe", "Kettle", "Pickup code", "kett"]},
    ]
    out = run_kiosk(display, broker, tmp_path, steps)
    assert out["ok"], (out["error"], out["stderr"][-3000:])
    assert out["cold_start_s"] < 10

    # every main screen was captured, and the pickup QR on screen decodes to the order
    for name in SCREENS:
        assert (out["shots"] / f"{name}.png").stat().st_size > 10_000, name
    [decoded] = decode_image((out["shots"] / "pickup.png").read_bytes())
    [(order_id, status, total, spent, customer)] = query(
        store.cfg.db_path, "SELECT order_id, status, total_cents, points_spent, customer_id "
                           "FROM kiosk_orders")
    assert decoded.text.startswith(f"VITRINE-PICKUP:{order_id}:")
    # priced at the edge, points spent as a discount, paid, for the identified customer
    assert (status, customer) == ("paid", CUSTOMER)
    assert spent == 1500 and total == 3999 - 1500
    # "I'm done" ended the session at the edge: the kiosk's current session is anonymous
    [(latest_customer,)] = query(store.cfg.db_path,
                                 "SELECT customer_id FROM sessions WHERE device_id = 'kiosk-01'"
                                 " ORDER BY rowid DESC LIMIT 1")
    assert latest_customer is None

    # the order reaches central through the outbox and the forwarder
    def at_central() -> list[dict[str, Any]]:
        status_, body = call("GET", f"{c.url}/api/v1/stores/{STORE}/orders", token)
        assert status_ == 200, body
        return [o for o in body["orders"] if o["order_id"] == order_id]

    [stored] = wait_until(at_central, timeout=20)
    assert stored["order"]["customer_id"] == CUSTOMER
    assert {ln["gtin"] for ln in stored["order"]["lines"]} == {GTIN_2}


def test_edge_unreachable_the_kiosk_says_so_plainly(display, broker, tmp_path):
    """No edge on the broker: the kiosk still starts, and says plainly that the store does
    not answer and that no payment was taken (the logic tests show none is)."""
    broker.add("kiosk-01", "kiosk")
    steps: list[dict[str, Any]] = [
        {"tap": "promo"}, {"wait": "search", "timeout": 15},
        {"expect": "The store is not answering"},
        {"shot": "unreachable"}]
    out = run_kiosk(display, broker, tmp_path, steps)
    assert out["ok"], (out["error"], out["stderr"][-3000:])
    assert any("No payment was taken" in t for t in out["texts"])
