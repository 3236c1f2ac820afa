"""The demo's kiosk: a simulated shopper at a real kiosk, end to end.

``vitrine demo`` gives one loyalty member points at central, then runs one
kiosk (``python -m kiosk``) driven by a simulated shopper: a card tap on the
kiosk's own NFC reader (the kit's nfcpy loop on nfcpy's ``udp:`` frontend, the
card played by ``firmware_sim.tag_emulator``), greeting
with the points central holds, search, product, order with points, payment,
pickup code, "I'm done". Without a display it starts Xvfb; without Xvfb it
runs the same kiosk logic headless (no window). Every step is printed, and the
order is followed to central.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.loyalty import issue_token
from contract.ndef_codec import encode_uri

#: Where a loyalty card's NDEF URI record points (as the fleet's cards).
LOYALTY_URL = "https://loyalty.vitrine.example/t/"
#: The member's card at the kiosk: a FeliCa IDm, what nfcpy's tag emulation can play
#: (the card token is bound to it).
KIOSK_CARD_UID = "03feffe0c0ffee01"

Say = Callable[[str, str], None]


@dataclass
class DemoCentral:
    """Central as the demo (or a benchmark) runs it: its URL, tokens and database."""

    url: str
    store_token: str
    admin_token: str
    db: Any
    server: Any = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.db.close()

    def api(self, method: str, path: str, token: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")


def start_central(var: Path, store_id: str) -> DemoCentral:
    from central import create_app
    from central.credentials import issue
    from central.server import ServerThread

    admin = secrets.token_urlsafe(18)
    app = create_app({"sqlite_path": str(var / "central.db"), "admin_token": admin})
    server = ServerThread(app).start()
    db = app.extensions["central_db"]
    token = issue(db, "store", store_id)
    return DemoCentral(server.url, token, admin, db, server)


def seed_customer(central: DemoCentral, customer_id: str, points: int) -> None:
    """Consent and loyalty points for one customer, as the web shop would send them."""
    from central.credentials import issue

    central.api("PUT", f"/api/v1/customers/{customer_id}/consents", central.admin_token,
                {"tracking": True})
    web = issue(central.db, "channel", "web")
    central.api("POST", "/api/v1/events", web, {"events": [
        {"event_id": f"demo-points-{customer_id}", "type": "loyalty", "channel": "web",
         "occurred_at": time.time(), "customer_id": customer_id, "points": points,
         "reference": {"kind": "purchase", "id": f"demo-web-{customer_id}"}}]})


def card_ndef(key: bytes, customer_id: str, card_uid: str) -> str:
    token = issue_token(key, customer_id, kind="card", now=time.time(), ttl_s=86400,
                        card_uid=card_uid)
    return base64.b64encode(encode_uri(LOYALTY_URL + token)).decode()


def shopper_steps(uid: str, ndef: str, query: str, product_name: str) -> list[dict[str, Any]]:
    return [
        {"sleep": 1.0},
        {"card": {"uid": uid, "ndef": ndef}}, {"wait": "greeting", "timeout": 15},
        {"sleep": 1.5},
        {"tap": "search_button"}, {"wait": "search"}, {"type": query}, {"sleep": 1.0},
        {"tap_text": product_name}, {"wait": "product"}, {"sleep": 1.5},
        {"tap": "add_to_cart"}, {"wait": "cart"}, {"tap": "use_points"}, {"sleep": 1.0},
        {"tap": "pay"}, {"wait": "pickup", "timeout": 10}, {"sleep": 2.0},
        {"tap": "done_button"}, {"wait": "attract"}]


def run_kiosk(*, port: int, store_id: str, kiosk_id: str, password: str, protocol: str,
              steps: list[dict[str, Any]], zones: list[str], var: Path, say: Say,
              stop: threading.Event, assets_url: str | None = None) -> dict[str, Any] | None:
    """Run the kiosk app with the simulated shopper; print its steps as they happen."""
    from kiosk.display import DisplayError, start_xvfb

    display = None
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        try:
            display = start_xvfb()
        except DisplayError as exc:
            say("KIOSK", f"no display and no Xvfb ({exc}): running the kiosk headless")
            return run_headless(port=port, store_id=store_id, kiosk_id=kiosk_id,
                                password=password, protocol=protocol, steps=steps, say=say)
        env = display.env(env)
        say("KIOSK", f"no display: the kiosk window runs on Xvfb {display.display}")
    card = next((step["card"] for step in steps if "card" in step), None)
    nfc: list[str] = []
    if card is not None:  # the card is held to the kiosk's own reader, not handed to it
        from firmware_sim.tag_emulator import free_udp_port

        path = f"udp:127.0.0.1:{free_udp_port()}"
        nfc = ["--nfc", path]
        steps = [{**step, "timeout": 60} if step.get("wait") == "greeting" else step
                 for step in steps if "card" not in step]
        threading.Thread(target=hold_card, args=(path, card, say, stop), name="demo-card",
                         daemon=True).start()
    script, result = var / "kiosk-shopper.json", var / "kiosk-result.json"
    script.write_text(json.dumps(steps))
    env.update(VITRINE_KIOSK_PASSWORD=password, KIVY_HOME=str(var / "kivy"))
    cmd = [sys.executable, "-m", "kiosk", "--kiosk", kiosk_id, "--port", str(port),
           "--store-id", store_id, "--protocol", protocol, "--windowed",
           "--zones", ",".join(zones), "--script", str(script), "--result", str(result),
           "--screenshots", str(var / "kiosk-screens"), "--exit-after-script",
           "--cache-dir", str(var / "kiosk-cache"), *nfc]
    if assets_url:  # product pictures from the edge's asset server
        cmd += ["--assets-url", assets_url]
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stderr is not None
        tail: list[str] = []
        for line in proc.stderr:
            tail = [*tail[-30:], line.rstrip()]
            if " vitrine.kiosk" in line and ("shopper:" in line or "first frame" in line):
                say("KIOSK", line.split(" vitrine.kiosk", 1)[1].split(" ", 1)[1].strip())
            if stop.is_set():
                proc.terminate()
        proc.wait(30)
    finally:
        if display is not None:
            display.stop()
    if not result.exists():
        say("KIOSK", f"the kiosk exited with {proc.returncode}:\n" + "\n".join(tail))
        return None
    return json.loads(result.read_text())


def hold_card(path: str, card: dict[str, str], say: Say, stop: threading.Event) -> None:
    """The shopper holds their card to the kiosk's reader until it has read it."""
    from firmware_sim.tag_emulator import TagEmulator

    with TagEmulator(path) as emulator:
        while not stop.is_set():
            shown = emulator.present(base64.b64decode(card["ndef"]), card["uid"], timeout=5)
            if shown.read_complete:
                say("KIOSK", f"card {card['uid']} read by the kiosk's NFC reader ({path})")
                return


def run_headless(*, port: int, store_id: str, kiosk_id: str, password: str, protocol: str,
                 steps: list[dict[str, Any]], say: Say) -> dict[str, Any]:
    """The same shopper through the kiosk's logic, without a window."""
    from contract.commands import CustomerIdentified
    from contract.session import DeviceSession
    from kiosk.flow import KioskFlow
    from kiosk.payment import SimulatedPayments
    from kiosk.store import StoreClient

    session = DeviceSession("127.0.0.1", port, store_id, kiosk_id, password, kind="kiosk",
                            protocol=protocol)
    identified: queue.SimpleQueue[str] = queue.SimpleQueue()
    session.on_command(lambda cmd: identified.put(cmd.session_id)
                       if isinstance(cmd, CustomerIdentified) else None)
    session.start(wait=10)
    flow = KioskFlow(StoreClient(session), SimulatedPayments(), publisher=session, lang="en")
    try:
        for step in steps:
            if "card" in step:
                flow.card_read(step["card"]["uid"], step["card"]["ndef"])
                flow.customer_identified(identified.get(timeout=10))
                say("KIOSK", f"greeting: {flow.shopper.points} points")
            elif "type" in step:
                flow.start()
                flow.type_query(step["type"])
                say("KIOSK", f"search {step['type']!r}: {len(flow.shopper.results)} results")
            elif "tap_text" in step and flow.shopper.results:
                flow.open_product(flow.shopper.results[0]["gtin"])
                say("KIOSK", f"product {flow.shopper.product['name']}")  # type: ignore[index]
            elif step.get("tap") == "add_to_cart":
                flow.add_to_cart()
            elif step.get("tap") == "use_points":
                flow.set_use_points(True)
            elif step.get("tap") == "pay":
                flow.checkout()
                say("KIOSK", f"order {flow.shopper.order and flow.shopper.order['status']}")
            elif step.get("tap") == "done_button":
                flow.done()
                say("KIOSK", "I'm done: session ended, screen wiped")
    finally:
        session.close()
    return {"ok": True, "headless": True}


def follow_order(db_path: Path, central: DemoCentral, store_id: str, say: Say,
                 timeout: float = 20.0) -> None:
    """Print the kiosk's order as the edge committed it, then once central has it."""
    conn = sqlite3.connect(db_path)
    try:
        row = conn.execute("SELECT order_id, status, total_cents, points_spent, pickup_code "
                           "FROM kiosk_orders ORDER BY created_at DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    if row is None:
        say("KIOSK", "no order was placed")
        return
    order_id, status, total, spent, code = row
    say("EDGE", f"order {order_id[:8]} {status}: {total / 100:.2f} EUR after {spent} points, "
                f"pickup code {code} (committed with its outbox row)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = central.api("GET", f"/api/v1/stores/{store_id}/orders", central.store_token)
        if any(o["order_id"] == order_id for o in body["orders"]):
            say("CENTRAL", f"order {order_id[:8]} received for store {store_id} "
                           "(forwarded from the edge's outbox)")
            return
        time.sleep(0.5)
    say("CENTRAL", f"order {order_id[:8]} not at central yet (the forwarder keeps trying)")
