"""DeviceClient against the real broker: birth/will, schema-valid payloads, no lost messages."""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.ndef_codec import encode_uri
from contract.nfc_tags import TagRead
from contract.topics import device_subscription, device_topic, parse_device_topic
from contract.validation import MAX_PAYLOAD_BYTES, validate
from firmware_sim.device import GARBAGE_KINDS, DeviceClient

pytestmark = pytest.mark.integration


class Subscriber:
    """A test-side consumer: the edge (persistent session) or a read-only observer."""

    def __init__(self, broker, topic: str, *, user: str = "edge", persistent: bool = False,
                 client_id: str | None = None) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.cond = threading.Condition()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"{user}-test",
                        protocol=mqtt.MQTTv311, clean_session=not persistent)
        c.username_pw_set(user, f"{user}-pw")
        c.reconnect_delay_set(0.1, 0.5)
        subscribed = threading.Event()
        c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
        c.on_subscribe = lambda *a: subscribed.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        assert subscribed.wait(5), "subscriber could not subscribe"
        self.client = c

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def wait(self, pred: Callable[[list[mqtt.MQTTMessage]], bool], timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self.messages), timeout)

    def wait_on(self, channel: str, n: int, timeout: float = 5.0) -> bool:
        """Wait for ``n`` messages on ``channel`` (the edge also sees every birth)."""
        return self.wait(lambda ms: sum(m.topic.endswith("/" + channel) for m in ms) >= n,
                         timeout)

    def wait_ids(self, channel: str, n: int, timeout: float = 10.0) -> bool:
        """Wait for ``n`` distinct msg_ids on ``channel`` (resends may duplicate some)."""
        return self.wait(lambda ms: len({json.loads(m.payload)["msg_id"] for m in ms
                                         if m.topic.endswith("/" + channel)}) >= n, timeout)

    def on(self, channel: str) -> list[mqtt.MQTTMessage]:
        with self.cond:
            return [m for m in self.messages if m.topic.endswith("/" + channel)]

    def json_on(self, channel: str) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in self.on(channel)]

    def msg_ids(self, channel: str) -> Counter[str]:
        return Counter(p["msg_id"] for p in self.json_on(channel))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def make_device(broker) -> Iterator[Callable[..., DeviceClient]]:
    made: list[DeviceClient] = []

    def make(device_id: str = "nfc-01", kind: str = "nfc_reader", **kw: Any) -> DeviceClient:
        pw = broker.add(device_id, kind)
        kw.setdefault("reconnect_min_s", 0.1)
        kw.setdefault("reconnect_max_s", 0.5)
        # No edge here, only bare subscribers: nobody sends commit notices (those are
        # tested against the real edge in tests/edge/test_broker_crash.py).
        kw.setdefault("await_commit", False)
        dev = DeviceClient(device_id, kind, pw, store_id=broker.store_id, port=broker.port, **kw)
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.close(flush_timeout=1.0)


def test_birth_is_retained_and_a_late_subscriber_sees_it(broker, make_device):
    dev = make_device(heartbeat_s=7.5)
    assert dev.start(wait=5)
    assert dev.flush(5)
    late = Subscriber(broker, device_topic(broker.store_id, "nfc-01", "state"), user="observer")
    assert late.wait(lambda ms: len(ms) >= 1)
    (msg,) = late.messages
    assert msg.retain
    birth = validate("state", json.loads(msg.payload))
    assert birth["state"] == "online" and birth["kind"] == "nfc_reader"
    assert birth["heartbeat_s"] == 7.5 and birth["fw"]
    assert abs(birth["ts"] - time.time()) < 5
    late.close()


def test_wrong_password_never_connects_and_says_so(broker, caplog):
    broker.add("nfc-01")
    dev = DeviceClient("nfc-01", "nfc_reader", "wrong", store_id=broker.store_id,
                       port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.2)
    assert not dev.start(wait=1.0)
    assert "connection refused" in caplog.text
    dev.scan("]Q1kept")
    assert dev.buffered == 1  # kept for when the credentials are fixed
    assert not dev.close(flush_timeout=0.1)


def test_heartbeat_and_tap_match_the_schemas(broker, make_device):
    edge = Subscriber(broker, device_subscription(broker.store_id))
    dev = make_device(heartbeat_s=0.2)
    assert dev.start(wait=5)
    ndef = encode_uri("https://id.gs1.org/01/09506000134352")
    msg_id = dev.tap(TagRead(uid="04a1b2c3d4e5f6", ndef=ndef, tag_type="Type2Tag"))
    blank_id = dev.tap(TagRead(uid="04a1b2c3d4e5f7", ndef=None, tag_type="Type2Tag"))
    assert edge.wait_on("telemetry", 2)
    assert edge.wait_on("nfc", 2)
    tap, blank = (validate("nfc", p) for p in edge.json_on("nfc"))
    assert tap["msg_id"] == msg_id and tap["msg_id"].startswith(dev.boot_id + "-")
    assert tap["uid"] == "04a1b2c3d4e5f6" and base64.b64decode(tap["ndef"]) == ndef
    assert abs(tap["ts"] - time.time()) < 5
    assert blank["msg_id"] == blank_id and blank["ndef"] is None
    for beat in edge.json_on("telemetry"):
        validate("telemetry", beat)
        assert beat["reconnects"] == 0 and beat["uptime_s"] >= 0 and beat["buffered"] >= 0
    ids = [p["msg_id"] for ch in ("nfc", "telemetry") for p in edge.json_on(ch)]
    assert len(ids) == len(set(ids))
    edge.close()


def test_scan_frame_and_clock_skew(broker, make_device):
    edge = Subscriber(broker, device_subscription(broker.store_id))
    dev = make_device("cam-01", "camera", clock_skew_s=-600)
    assert dev.start(wait=5)
    dev.scan("]Q1https://id.gs1.org/01/09506000134352")
    dev.frame(b"\x89PNG\r\n\x1a\nfake", "png")
    assert edge.wait_on("qr", 1) and edge.wait_on("frame", 1)
    (scan,) = edge.json_on("qr")
    (frame,) = edge.json_on("frame")
    validate("qr", scan)
    validate("frame", frame)
    assert scan["text"] == "]Q1https://id.gs1.org/01/09506000134352"
    assert base64.b64decode(frame["image"]).startswith(b"\x89PNG")
    assert abs(scan["ts"] - (time.time() - 600)) < 5
    edge.close()


def test_last_will_fires_retained_offline_when_the_connection_is_cut(broker, make_device):
    state_topic = device_topic(broker.store_id, "nfc-01", "state")
    watcher = Subscriber(broker, state_topic, user="observer")
    dev = make_device(reconnect_min_s=0.1)
    assert dev.start(wait=5)
    assert watcher.wait(lambda ms: any(json.loads(m.payload)["state"] == "online" for m in ms))
    assert dev.drop_connection(offline_s=1.0)
    assert watcher.wait(lambda ms: json.loads(ms[-1].payload)["state"] == "offline")
    assert json.loads(watcher.messages[-1].payload) == {"state": "offline", "kind": "nfc_reader"}
    # Retained: someone subscribing during the outage learns the device is offline.
    late = Subscriber(broker, state_topic, user="observer", client_id="observer-late")
    assert late.wait(lambda ms: len(ms) >= 1)
    assert late.messages[0].retain and json.loads(late.messages[0].payload)["state"] == "offline"
    # ... and the device comes back by itself, with a fresh birth.
    assert watcher.wait(lambda ms: json.loads(ms[-1].payload)["state"] == "online", timeout=8)
    assert dev.stats.reconnects == 1
    late.close()
    watcher.close()


def test_messages_buffered_while_the_broker_is_down_all_arrive_with_their_ids(broker,
                                                                           make_device):
    edge = Subscriber(broker, device_subscription(broker.store_id), persistent=True)
    dev = make_device("qr-01", "qr_scanner", heartbeat_s=3600)
    assert dev.start(wait=5)
    before = [dev.scan(f"]Q1before-{i}") for i in range(20)]
    assert dev.flush(5)
    broker.process.stop()
    deadline = time.monotonic() + 5
    while dev.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not dev.connected
    offline = [dev.scan(f"]Q1offline-{i}") for i in range(300)]
    assert dev.buffered == 300
    assert not dev.flush(0.2)
    broker.restart()
    assert dev.flush(10), f"{dev.buffered} still buffered"
    expected = set(before + offline)
    assert edge.wait_ids("qr", len(expected))
    got = edge.msg_ids("qr")
    assert set(got) == expected  # none lost, no new ids invented for the retries
    by_id = {p["msg_id"]: p["text"] for p in edge.json_on("qr")}
    assert all(by_id[m] == f"]Q1offline-{i}" for i, m in enumerate(offline))
    assert dev.stats.dropped_oldest == 0 and dev.stats.reconnects == 1
    edge.close()


def test_in_flight_messages_are_resent_with_the_same_id_after_a_cut(broker, make_device):
    """Deterministic: the broker is frozen (SIGSTOP) so the messages handed to paho stay
    provably unacknowledged when the connection is cut; all must be resent, same ids."""
    edge = Subscriber(broker, device_subscription(broker.store_id), persistent=True)
    dev = make_device("qr-01", "qr_scanner", heartbeat_s=3600, max_inflight=50)
    assert dev.start(wait=5)
    ids = [dev.scan(f"]Q1burst-{i}") for i in range(1000)]
    assert dev.flush(15)
    pid = broker.process.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        ids += [dev.scan(f"]Q1burst-{i}") for i in range(1000, 1200)]
        # 50 handed to paho (max_inflight), none can be acknowledged by a frozen broker.
        deadline = time.monotonic() + 5
        while len(dev._inflight) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(dev._inflight) == 50 and dev.buffered == 200
        assert dev.drop_connection(offline_s=0.3)
    finally:
        os.kill(pid, signal.SIGCONT)
    ids += [dev.scan(f"]Q1burst-{i}") for i in range(1200, 2000)]
    assert dev.flush(15)
    assert edge.wait_ids("qr", 2000)
    got = edge.msg_ids("qr")
    assert set(got) == set(ids)
    assert dev.stats.reconnects == 1 and dev.stats.resent >= 50
    edge.close()


def test_a_burst_of_20000_loses_nothing(broker, make_device):
    edge = Subscriber(broker, device_subscription(broker.store_id), persistent=True)
    # A small buffer: the burst must block the producer rather than drop the oldest.
    dev = make_device("qr-01", "qr_scanner", heartbeat_s=3600, buffer_size=500,
                      max_inflight=100)
    assert dev.start(wait=5)
    ids = [dev.scan(f"]Q1{i}") for i in range(20_000)]
    assert dev.flush(30)
    assert edge.wait_on("qr", 20_000, timeout=30), len(edge.messages)
    got = edge.msg_ids("qr")
    assert len(got) == 20_000 and set(got) == set(ids)
    assert dev.stats.dropped_oldest == 0 and dev.stats.send_errors == 0
    assert dev.stats.acked == 20_000
    edge.close()


def test_offline_buffer_keeps_the_newest_and_counts_drops(broker, make_device):
    edge = Subscriber(broker, device_subscription(broker.store_id), persistent=True)
    dev = make_device("qr-01", "qr_scanner", heartbeat_s=3600, buffer_size=50)
    broker.process.stop()
    dev.start()  # boots while the broker is down: keeps retrying
    ids = [dev.scan(f"]Q1n{i}") for i in range(80)]
    assert dev.stats.dropped_oldest == 30 and dev.buffered == 50
    broker.restart()
    assert dev.flush(10)
    assert edge.wait_on("qr", 50, timeout=10)
    assert set(edge.msg_ids("qr")) == set(ids[30:])
    edge.close()


def test_duplicate_rate_resends_the_same_bytes_and_id(broker, make_device):
    edge = Subscriber(broker, device_subscription(broker.store_id))
    dev = make_device(duplicate_rate=1.0, heartbeat_s=3600)
    assert dev.start(wait=5)
    ids = [dev.tap(TagRead(uid="04a1b2c3d4e5f6", ndef=None, tag_type="Type2Tag"))
           for _ in range(5)]
    assert dev.flush(5)
    assert edge.wait_on("nfc", 10)
    assert edge.msg_ids("nfc") == Counter({i: 2 for i in ids})
    assert dev.stats.duplicates == 5
    edge.close()


def test_garbage_goes_through_the_devices_own_acl_and_is_invalid(broker, make_device):
    edge = Subscriber(broker, device_subscription(broker.store_id))
    dev = make_device(heartbeat_s=3600)
    assert dev.start(wait=5)
    for kind in GARBAGE_KINDS:
        dev.inject_garbage(kind)
    assert dev.flush(5)
    assert dev.stats.rejected == 0  # the broker accepted every one: the edge must cope
    assert edge.wait(lambda ms: sum(not m.topic.endswith("/state") for m in ms)
                     >= len(GARBAGE_KINDS))
    for msg in [m for m in edge.messages if not m.topic.endswith("/state")]:
        channel = parse_device_topic(msg.topic).channel
        assert parse_device_topic(msg.topic).device_id == "nfc-01"
        if len(msg.payload) > MAX_PAYLOAD_BYTES[channel]:
            continue
        with pytest.raises(ValueError):  # not JSON, or SchemaError
            validate(channel, json.loads(msg.payload))
    edge.close()
