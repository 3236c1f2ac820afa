"""DeviceSession against the real broker: commands, persistent sessions, reason codes.

Buffering, back-pressure, birth/will and reconnects are covered through the
simulator built on it (tests/firmware_sim/test_device.py); requests end to end
in tests/edge/test_requests.py.
"""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.commands import Command, ShowProduct
from contract.session import DeviceSession
from contract.topics import command_topic, device_topic, edge_state_topic

GTIN = "09506000134352"


def wait_until(pred, timeout: float = 5.0) -> None:
    ev = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        ev.wait(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def edge_pub(broker):
    """The edge's credentials, publishing by hand (QoS 1, waits for PUBACK)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edge-test", protocol=mqtt.MQTTv5)
    c.username_pw_set("edge", "edge-pw")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()

    def publish(topic: str, payload: bytes | dict, retain: bool = False) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = c.publish(topic, raw, qos=1, retain=retain)
        info.wait_for_publish(5)
        assert info.is_published()

    yield publish
    c.disconnect()
    c.loop_stop()


def make(broker, device_id: str, kind: str, **kw) -> DeviceSession:
    broker.add(device_id, kind)
    return DeviceSession("127.0.0.1", broker.port, broker.store_id, device_id,
                         f"{device_id}-pw", kind=kind, heartbeat_s=60, **kw)


def show(cmd_id: str) -> dict:
    return ShowProduct(cmd_id=cmd_id, ts=1.0, gtin=GTIN, name="Trail").to_payload()


@pytest.mark.allow_errors  # the failing handler is logged with its traceback, on purpose
def test_commands_are_typed_bad_ones_counted_repeats_dropped(broker, edge_pub):
    screen = make(broker, "sign-01", "signage")
    got: list[Command] = []
    screen.on_command(got.append)

    def exploding(cmd: Command) -> None:
        raise RuntimeError("renderer bug")

    screen.on_command(exploding)
    assert screen.start(wait=5)
    topic = command_topic(broker.store_id, "signage", "sign-01")
    try:
        wait_until(lambda: screen.stats.connects == 1)
        # connects counts the CONNACK, not the SUBACK: a command published before the
        # broker processed the subscription reaches nobody. Wait for the SUBACK, then
        # for one command to arrive.
        assert screen.subscribed.wait(15), "no SUBACK"
        edge_pub(topic, show("warm-up"))
        wait_until(lambda: len(got) == 1 and screen.stats.handler_errors == 1, timeout=15)
        got.clear()
        screen.stats.handler_errors = 0
        edge_pub(topic, b"not json")
        edge_pub(topic, {**show("c1"), "customer_id": "C0001234"})  # never on a screen
        edge_pub(topic, show("c1"))
        edge_pub(topic, show("c1"))  # QoS 1 redelivery
        edge_pub(topic, show("c2"))
        # both handlers ran for both commands (the failing one runs after the list's)
        wait_until(lambda: len(got) == 2 and screen.stats.handler_errors == 2)
        assert [c.cmd_id for c in got] == ["c1", "c2"]
        assert all(isinstance(c, ShowProduct) for c in got)
        assert screen.stats.bad_commands == 2 and len(screen.bad_commands) == 2
        assert screen.bad_commands[0][1] == b"not json"
        assert screen.stats.duplicate_commands == 1
        assert screen.stats.handler_errors == 2  # and the session carried on
        assert screen.connected
    finally:
        screen.close(2)


def test_commands_sent_while_a_screen_is_off_are_delivered_when_it_returns(broker, edge_pub):
    first = make(broker, "sign-01", "signage")
    first.on_command(lambda c: None)
    assert first.start(wait=5)
    wait_until(lambda: first.stats.connects == 1)
    first.close(2)
    edge_pub(command_topic(broker.store_id, "signage", "sign-01"), show("while-off"))
    again = make(broker, "sign-01", "signage")
    got: list[Command] = []
    again.on_command(got.append)
    assert again.start(wait=5)
    try:
        wait_until(lambda: got)
        assert got[0].cmd_id == "while-off"
    finally:
        again.close(2)


def test_edge_state_is_watched(broker, edge_pub):
    edge_pub(edge_state_topic(broker.store_id), {"state": "online"}, retain=True)
    screen = make(broker, "sign-01", "signage")
    assert screen.edge_online is None
    assert screen.start(wait=5)
    try:
        wait_until(lambda: screen.edge_online is True)
        edge_pub(edge_state_topic(broker.store_id), {"state": "offline"}, retain=True)
        wait_until(lambda: screen.edge_online is False)
    finally:
        screen.close(2)


def test_reason_codes_are_counted(broker):
    """0x10: accepted but nobody subscribes (no edge yet); 0x87: the ACL refused it."""
    reader = make(broker, "qr-01", "qr_scanner")  # a scanner: qr is one of its channels
    assert reader.start(wait=5)
    try:
        reader.scan("]Q1hello")
        assert reader.flush(5)
        assert reader.stats.no_subscribers == 1 and reader.stats.acked == 1
        reader._send(device_topic(broker.store_id, "nfc-02", "qr"), b"{}", "forged")
        wait_until(lambda: reader.stats.rejected == 1)
    finally:
        reader.close(2)


def test_readers_get_no_persistent_session_and_no_commands(broker):
    reader = make(broker, "nfc-01", "nfc_reader")
    assert reader.persistent is False
    with pytest.raises(ValueError, match="no commands"):
        reader.on_command(lambda c: None)
    assert make(broker, "kiosk-01", "kiosk").persistent is True
    with pytest.raises(ValueError, match="unknown device kind 'toaster'"):
        DeviceSession("127.0.0.1", broker.port, broker.store_id, "x-01", "pw", kind="toaster")


def test_the_session_socket_has_tcp_nodelay(broker):
    """Nagle + delayed ACK would add 20-40 ms to every request/reply round trip."""
    import socket

    from contract.mqtt_wire import BufferedSocket

    kiosk = make(broker, "kiosk-01", "kiosk")
    assert kiosk.start(wait=5)
    try:
        sock = kiosk._client.socket()
        raw = sock._sock if isinstance(sock, BufferedSocket) else sock
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        kiosk.close(2)
