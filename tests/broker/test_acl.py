"""The real broker enforces per-device credentials and ACLs."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties  # noqa: F401

from contract.topics import device_subscription, device_topic


def _client(broker, name: str, password: str, protocol=mqtt.MQTTv5) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=protocol)
    c.username_pw_set(name, password)
    return c


def _connect(c: mqtt.Client, port: int) -> int:
    result: list[int] = []
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        result.append(reason_code.value)
        done.set()

    c.on_connect = on_connect
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert done.wait(5)
    return result[0]


def test_wrong_password_is_refused(broker):
    broker.add("nfc-01")
    c = _client(broker, "nfc-01", "not-the-password")
    rc = _connect(c, broker.port)
    c.loop_stop()
    assert rc == 0x87  # Mosquitto 2.0 answers a wrong password with Not authorized


def test_device_cannot_publish_to_another_devices_topic(broker):
    pw1 = broker.add("nfc-01")
    broker.add("nfc-02")
    edge = _client(broker, "edge", "edge-pw")
    received: list[str] = []
    got = threading.Event()

    def on_message(client, userdata, msg):
        received.append(msg.topic)
        got.set()

    edge.on_message = on_message
    assert _connect(edge, broker.port) == 0
    sub = threading.Event()
    edge.on_subscribe = lambda *a: sub.set()
    edge.subscribe(device_subscription(broker.store_id), qos=1)
    assert sub.wait(5)

    dev = _client(broker, "nfc-01", pw1)
    acks: dict[int, int] = {}
    acked = threading.Event()

    def on_publish(client, userdata, mid, reason_code, properties):
        acks[mid] = reason_code.value
        acked.set()

    dev.on_publish = on_publish
    assert _connect(dev, broker.port) == 0
    forged = dev.publish(device_topic(broker.store_id, "nfc-02", "nfc"), b"{}", qos=1)
    assert acked.wait(5)
    assert acks[forged.mid] == 0x87  # Not authorized, said by the real broker
    acked.clear()
    own = dev.publish(device_topic(broker.store_id, "nfc-01", "nfc"), b"{}", qos=1)
    assert acked.wait(5)
    assert acks[own.mid] == 0
    assert got.wait(5)
    assert received == [device_topic(broker.store_id, "nfc-01", "nfc")]
    for c in (dev, edge):
        c.disconnect()
        c.loop_stop()
