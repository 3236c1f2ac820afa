"""contract/mqtt_wire.py: the paho hooks it relies on, and its own PUBLISH parser.

The fast receive path (``VitrineClient.on_publish_received``) parses PUBLISH
packets itself instead of paho's ``decode_publish``: it must hand over exactly
what paho would (message id, QoS, topic, payload, retain) for every packet, and
leave every packet it does not understand to paho, which raises or reports as
before. Checked on arbitrary packets (Hypothesis) and on a real Mosquitto.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from contract.mqtt_wire import BufferedSocket, VitrineClient


def test_the_paho_hooks_exist():
    """paho private methods this module overrides: a paho upgrade that drops one fails here."""
    for name in ("_create_socket", "_packet_write", "_handle_publish", "_handle_on_message",
                 "_packet_queue", "_send_puback", "_easy_log"):
        assert callable(getattr(mqtt.Client, name, None)), name
    c = VitrineClient("x", protocol=mqtt.MQTTv311)
    assert set(c._in_packet) >= {"command", "packet"}


def _publish_packet(topic: bytes, payload: bytes, qos: int, mid: int, retain: bool,
                    dup: bool) -> tuple[int, bytearray]:
    body = bytearray(len(topic).to_bytes(2, "big") + topic)
    if qos:
        body += mid.to_bytes(2, "big")
    body += payload
    return 0x30 | (dup << 3) | (qos << 1) | int(retain), body


def _through(client: VitrineClient, command: int, packet: bytearray) -> tuple[str, Any]:
    """Feed one PUBLISH to ``client`` as paho's reader would; what came out, or the error."""
    got: list[tuple[Any, ...]] = []
    client.on_message = lambda c, u, m: got.append(
        ("message", m.mid, m.qos, m.topic, m.payload, bool(m.retain)))
    client.on_publish_received = (None if client.on_publish_received is None
                                  else lambda *a: got.append(("raw", *a)))
    client._in_packet["command"] = command
    client._in_packet["packet"] = packet
    try:
        rc = client._handle_publish()
    except Exception as exc:  # compared with what paho's own path raises
        return "error", type(exc).__name__
    return "ok", (rc, [g[1:] for g in got])


def _pair() -> tuple[VitrineClient, VitrineClient]:
    stock = VitrineClient("stock", protocol=mqtt.MQTTv311, manual_ack=True)
    fast = VitrineClient("fast", protocol=mqtt.MQTTv311, manual_ack=True)
    fast.on_publish_received = lambda *a: None
    return stock, fast


@given(topic=st.binary(max_size=40), payload=st.binary(max_size=300),
       qos=st.sampled_from([0, 1]), mid=st.integers(0, 65535), retain=st.booleans(),
       dup=st.booleans(), cut=st.integers(0, 400))
def test_the_fast_path_hands_over_what_paho_would(topic, payload, qos, mid, retain, dup, cut):
    """Any PUBLISH, whole or cut short, valid UTF-8 topic or not: same values, same errors."""
    command, packet = _publish_packet(topic, payload, qos, mid, retain, dup)
    packet = packet[:cut]
    stock, fast = _pair()
    expected = _through(stock, command, bytearray(packet))
    got = _through(fast, command, bytearray(packet))
    if expected[0] == "ok" and got[0] == "ok":
        assert got[0] == expected[0] and got[1][0] == expected[1][0]
        assert [tuple(x) for x in got[1][1]] == [tuple(x) for x in expected[1][1]]
    else:
        assert got == expected


@given(payload=st.binary(max_size=64))
def test_qos_2_and_mqtt5_stay_on_paho_s_path(payload):
    command, packet = _publish_packet(b"a/b", payload, 2, 7, False, False)
    fast = VitrineClient("fast", protocol=mqtt.MQTTv311, manual_ack=True)
    fast.on_publish_received = lambda *a: pytest.fail("QoS 2 must not take the fast path")
    fast._in_packet["command"], fast._in_packet["packet"] = command, packet
    fast._handle_publish()
    assert 7 in fast._in_messages  # paho's QoS 2 state machine has it
    v5 = VitrineClient("v5", manual_ack=True)
    v5.on_publish_received = lambda *a: pytest.fail("MQTT 5 must not take the fast path")
    seen: list[bytes] = []
    v5.on_message = lambda c, u, m: seen.append(m.payload)
    command, packet = _publish_packet(b"a/b", b"\x00" + payload, 1, 7, False, False)
    v5._in_packet["command"], v5._in_packet["packet"] = command, packet
    v5._handle_publish()
    assert seen == [payload]  # the property length byte (0) was read as properties


def _connect(client: mqtt.Client, port: int, name: str) -> None:
    client.username_pw_set(name, f"{name}-pw")
    ready = threading.Event()
    client.on_subscribe = lambda *a: ready.set()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("vitrine/v1/#", 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert ready.wait(5)


def test_a_real_broker_s_publishes_arrive_the_same_both_ways(broker):
    """Retained and live, QoS 0 and 1, over a real Mosquitto: the fast path sees what paho sees."""
    broker.add("observer2", "observer")
    stock = VitrineClient("observer", protocol=mqtt.MQTTv311)
    fast = VitrineClient("observer2", protocol=mqtt.MQTTv311)
    got_stock: list[tuple[Any, ...]] = []
    got_fast: list[tuple[Any, ...]] = []
    stock.on_message = lambda c, u, m: got_stock.append((m.qos, m.topic, m.payload,
                                                         bool(m.retain)))
    fast.on_message = lambda c, u, m: pytest.fail("on_message must not be called")
    fast.on_publish_received = lambda mid, qos, topic, payload, retain: got_fast.append(
        (qos, topic, payload, retain))
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edge", protocol=mqtt.MQTTv311)
    pub.username_pw_set("edge", "edge-pw")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    store = broker.store_id
    try:
        pub.publish(f"vitrine/v1/{store}/edge/state", b'{"state":"online"}', qos=1,
                    retain=True).wait_for_publish(5)
        _connect(stock, broker.port, "observer")
        _connect(fast, broker.port, "observer2")
        sent = [(1, f"vitrine/v1/{store}/events/interest", b"[1]"),
                (0, f"vitrine/v1/{store}/events/presence", b""),
                (1, f"vitrine/v1/{store}/events/interest", "é€".encode() * 2000)]
        for qos, topic, payload in sent:
            pub.publish(topic, payload, qos=qos).wait_for_publish(5)
        deadline = time.time() + 5
        while (len(got_stock) < 4 or len(got_fast) < 4) and time.time() < deadline:
            time.sleep(0.02)
        assert sorted(got_fast) == sorted(got_stock)
        assert (1, f"vitrine/v1/{store}/edge/state", b'{"state":"online"}', True) in got_fast
        assert [g[:3] for g in got_fast if not g[3]] == [(q, t, p) for q, t, p in sent]
        assert isinstance(fast.socket(), BufferedSocket)
    finally:
        pub.publish(f"vitrine/v1/{store}/edge/state", b"", qos=1, retain=True).wait_for_publish(5)
        for c in (stock, fast, pub):
            c.disconnect()
            c.loop_stop()
