"""The edge drives signage (products tapped in its zone) and kiosks (who identified there)."""

from __future__ import annotations

import base64
import json
import threading
import time

from contract.loyalty import issue_token
from contract.ndef_codec import encode_uri
from contract.topics import command_topic, device_topic
from contract.validation import validate

from .conftest import GTIN, LOYALTY_KEY, make_client


class Screen:
    def __init__(self, broker, family: str, device_id: str, listen_to: str | None = None):
        self.got: list[dict] = []
        self.cond = threading.Condition()
        # The device's one connection (the broker makes client id = username).
        self.client = make_client(broker.port, device_id, f"{device_id}-pw")
        self.client.on_message = self._on_message
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(command_topic(broker.store_id, family, listen_to or device_id), 1)
        assert done.wait(5)

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.got.append(json.loads(msg.payload))
            self.cond.notify_all()

    def wait(self, n: int = 1, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.got) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"got {self.got}"
                self.cond.wait(left)
            return list(self.got)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_product_tapped_in_a_zone_shows_on_its_screen_without_the_customer(
        edge, broker, device, observer):
    screen = Screen(broker, "signage", "sign-01")
    try:
        token = issue_token(LOYALTY_KEY, "C0000777", kind="card", now=time.time(),
                            ttl_s=86400, card_uid="04c0ffee123456")
        nfc = device("nfc-01")  # zone "shoes", like sign-01
        nfc.send("nfc", {"uid": "04c0ffee123456", "ndef": base64.b64encode(encode_uri(
            f"https://loyalty.vitrine.example/t/{token}")).decode()})
        nfc.send("nfc", {"uid": "04aabbccddeeff", "ndef": base64.b64encode(
            encode_uri(f"https://id.gs1.org/01/{GTIN}")).decode()})
        (cmd,) = screen.wait()
        observer.wait_for("interest")
    finally:
        screen.close()
    validate("command", cmd)
    assert cmd["cmd"] == "show_product" and cmd["gtin"] == GTIN
    assert cmd["name"] == "Trail shoe" and cmd["price_cents"] == 8999
    assert "customer_id" not in cmd and "session_id" not in cmd  # a public screen


def test_customer_identified_at_a_kiosk_is_told_to_that_kiosk_only(edge, broker, device):
    kiosk = Screen(broker, "kiosk", "kiosk-01")
    spy = Screen(broker, "kiosk", "sign-01", listen_to="kiosk-01")  # ACL: not its topic
    subscribed = threading.Event()
    spy.client.on_subscribe = lambda *a: subscribed.set()
    spy.client.subscribe(command_topic(broker.store_id, "signage", "sign-01"), 1)  # its own
    assert subscribed.wait(5)
    try:
        token = issue_token(LOYALTY_KEY, "C0000042", kind="app", now=time.time(), ttl_s=120)
        payload = json.dumps({"msg_id": "k1", "ts": time.time(), "text": "]Q1" + token})
        kiosk.client.publish(device_topic(broker.store_id, "kiosk-01", "qr"), payload,
                             qos=1).wait_for_publish(5)
        (cmd,) = kiosk.wait()
        # Marker: a product tapped in sign-01's zone sends sign-01 its own command, published
        # by the edge after the kiosk's; once the spy has it, it would have had the kiosk's.
        device("nfc-01").send("nfc", {"uid": "04a1b2c3d4e5f7", "ndef": base64.b64encode(
            encode_uri(f"https://id.gs1.org/01/{GTIN}")).decode()})
        (marker,) = spy.wait()
    finally:
        kiosk.close()
        spy.close()
    validate("command", cmd)
    assert cmd["cmd"] == "customer_identified" and cmd["customer_id"] == "C0000042"
    assert cmd["method"] == "app"
    assert marker["cmd"] == "show_product"  # and nothing addressed to the kiosk
