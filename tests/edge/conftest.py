"""Fixtures for the edge: a small store layout, a loyalty key, an edge node on a real broker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.topics import device_topic, events_subscription
from edge.config import load_config
from edge.node import EdgeNode

LOYALTY_KEY = bytes(range(32))
GTIN = "09506000134352"
GTIN_2 = "04006381333931"

LAYOUT: dict[str, Any] = {
    "store_id": "store-test",
    "zones": [{"id": "shoes", "name": "Shoes"}, {"id": "kitchen", "name": "Kitchen"}],
    "products": [
        {"gtin": GTIN, "name": "Trail shoe", "brand": "Acme", "category": "shoes",
         "price_cents": 8999, "currency": "EUR"},
        {"gtin": GTIN_2, "name": "Kettle", "brand": "Brew", "category": "kitchen",
         "price_cents": 3999, "currency": "EUR"},
    ],
    "devices": [
        {"id": "nfc-01", "kind": "nfc_reader", "zone": "shoes", "shelf": "S1"},
        {"id": "nfc-02", "kind": "nfc_reader", "zone": "kitchen", "shelf": "K1"},
        {"id": "qr-01", "kind": "qr_scanner", "zone": "kitchen", "shelf": "K2"},
        {"id": "cam-01", "kind": "camera", "zone": "shoes", "shelf": "S2"},
        {"id": "sign-01", "kind": "signage", "zone": "shoes", "shelf": None},
        {"id": "kiosk-01", "kind": "kiosk", "zone": "kitchen", "shelf": None},
    ],
    "tags": [{"uid": "04a1b2c3d4e5f6", "gtin": GTIN_2, "zone": "kitchen", "shelf": "K1"}],
}


def make_client(port: int, name: str, password: str, *, clean: bool = True,
                inflight: int = 20, client_id: str | None = None) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or name,
                    protocol=mqtt.MQTTv5)
    c.username_pw_set(name, password)
    c.max_inflight_messages_set(inflight)
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port, clean_start=clean)
    c.loop_start()
    assert connected.wait(5), f"{name} could not connect"
    return c


class Device:
    """A bare device publisher (the firmware sims have their own, richer client)."""

    def __init__(self, broker, device_id: str):
        self.device_id = device_id
        self.store_id = broker.store_id
        self.client = make_client(broker.port, device_id, f"{device_id}-pw")
        self.n = 0

    def send(self, channel: str, payload: dict[str, Any] | bytes, *,
             msg_id: str | None = None) -> str:
        if isinstance(payload, dict):
            self.n += 1
            msg_id = msg_id or f"m{self.n}"
            payload = json.dumps({"msg_id": msg_id, "ts": time.time(), **payload}).encode()
        info = self.client.publish(device_topic(self.store_id, self.device_id, channel),
                                   payload, qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
        return msg_id or ""

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Observer:
    """An in-store consumer (signage, kiosk) listening to the edge's events."""

    def __init__(self, broker):
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.cond = threading.Condition()
        self.client = make_client(broker.port, "observer", "observer-pw")
        self.client.on_message = self._on_message
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(events_subscription(broker.store_id), qos=1)
        assert done.wait(5)

    def _on_message(self, client, userdata, msg) -> None:
        kind = msg.topic.rsplit("/", 1)[1]
        batch = json.loads(msg.payload)
        assert isinstance(batch, list) and batch, "events are published as a JSON array"
        with self.cond:
            self.events.extend((kind, e) for e in batch)
            self.cond.notify_all()

    def wait_for(self, kind: str, n: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [e for k, e in self.events if k == kind]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} {kind} events, got {len(got)}: "
                                         f"{self.events[-5:]}")
                self.cond.wait(left)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def layout_file(tmp_path: Path) -> Path:
    p = tmp_path / "layout.json"
    p.write_text(json.dumps(LAYOUT))
    return p


@pytest.fixture
def edge_config(broker, tmp_path: Path, layout_file: Path):
    broker.add_many([(d["id"], d["kind"]) for d in LAYOUT["devices"]] + [("nfc-99", "nfc_reader")])
    return load_config(env={}, store_id=broker.store_id, db_path=tmp_path / "edge.db",
                       mqtt_port=broker.port, mqtt_password="edge-pw",
                       loyalty_keys="k1:" + LOYALTY_KEY.hex(), layout_path=layout_file,
                       stale_check_s=0.2, panel_port=0)


@pytest.fixture
def edge(edge_config) -> Iterator[EdgeNode]:
    node = EdgeNode(edge_config).start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def observer(broker) -> Iterator[Observer]:
    o = Observer(broker)
    yield o
    o.close()


@pytest.fixture
def device(broker):
    made: list[Device] = []

    def factory(device_id: str) -> Device:
        d = Device(broker, device_id)
        made.append(d)
        return d

    yield factory
    for d in made:
        d.close()


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def query(db_path: Path, sql: str, *args: Any) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()
