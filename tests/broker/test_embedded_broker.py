"""The embedded broker (amqtt), the demo's fallback when Mosquitto is not installed.

Everything runs through :func:`vitrine.broker.start_broker` with the ``mosquitto``
binary hidden, so what is tested is what ``vitrine demo`` starts. It must keep
the store's security model (the same ``passwd`` and ``acl`` files) and carry the
edge's persistent session; what amqtt cannot do is listed in
``vitrine/embedded_broker.py`` and the MQTT 5 refusal is pinned below.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import vitrine.broker
from contract.ndef_codec import encode_uri
from contract.nfc_tags import TagRead
from contract.topics import device_subscription
from edge.config import load_config
from edge.node import EdgeNode
from firmware_sim.device import DeviceClient
from tests.conftest import STORE, TestBroker
from tests.demo_run import run_demo_until
from vitrine.broker import BrokerSettings, free_port, start_broker
from vitrine.embedded_broker import Acl, filter_covers, topic_matches, verify_password
from vitrine.provisioning import Principal, Provisioner, hash_password, render_acl

pytestmark = pytest.mark.integration

WAIT = 5.0
GTIN = "09506000134352"
DEVICES = f"vitrine/v1/{STORE}/devices"
#: CONNACK "not authorized": MQTT 3.1.1 return code 5, which paho reports as reason code 0x87.
REFUSED = 0x87


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestBroker]:
    """The embedded broker started exactly as the demo does on a machine without Mosquitto."""
    monkeypatch.setattr(vitrine.broker, "mosquitto_binary", lambda: None)
    data_dir = tmp_path / "broker"
    prov = Provisioner(data_dir, STORE)
    prov.add_many([("edge", "edge", "edge-pw"), ("observer", "observer", "observer-pw"),
                   ("nfc-01", "nfc_reader", "nfc-01-pw"), ("nfc-02", "nfc_reader", "nfc-02-pw")])
    proc = start_broker(BrokerSettings(data_dir=data_dir, port=free_port()),
                        log_file=data_dir / "broker.log", allow_embedded=True)
    tb = TestBroker(proc, prov, STORE)
    try:
        yield tb
    finally:
        tb.process.stop(timeout=WAIT)


class Client:
    """A paho MQTT 3.1.1 client recording CONNACKs, SUBACKs, PUBACKs and messages."""

    def __init__(self, port: int, client_id: str, password: str, *, username: str | None = None,
                 clean: bool = True, manual_ack: bool = False,
                 protocol: int = mqtt.MQTTv311) -> None:
        kwargs: dict[str, Any] = {} if protocol == mqtt.MQTTv5 else {"clean_session": clean}
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                             manual_ack=manual_ack, **kwargs)
        self.c.username_pw_set(username or client_id, password)
        self.c.reconnect_delay_set(0.1, 0.1)  # a refused client's loop_stop() then returns fast
        self.cond = threading.Condition()
        self.connacks: list[int] = []
        self.granted: list[int] = []
        self.acked: set[int] = set()
        self.messages: list[mqtt.MQTTMessage] = []
        self.disconnected = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self.c.on_message = self._on_message
        self.c.on_disconnect = lambda *a: self.disconnected.set()
        self.port = port

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        with self.cond:
            self.connacks.append(reason_code.value)
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self.cond:
            self.granted.append(reason_codes[0].value)
            self.cond.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self.cond:
            self.acked.add(mid)
            self.cond.notify_all()

    def _on_message(self, client, userdata, msg) -> None:
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def wait(self, predicate, timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def connect(self) -> int:
        """Connect and return the CONNACK reason code (0 accepted, :data:`REFUSED`)."""
        self.c.connect("127.0.0.1", self.port, keepalive=30)
        self.c.loop_start()
        assert self.wait(lambda: self.connacks), "no CONNACK"
        return self.connacks[-1]

    def subscribe(self, topic: str) -> int:
        n = len(self.granted)
        self.c.subscribe(topic, qos=1)
        assert self.wait(lambda: len(self.granted) > n), "no SUBACK"
        return self.granted[-1]

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.c.publish(topic, payload, qos=1)
        assert self.wait(lambda: info.mid in self.acked), f"no PUBACK for {topic}"

    def payloads(self) -> list[bytes]:
        with self.cond:
            return [m.payload for m in self.messages]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for c in made:
        c.close()


def connected(made: list[Client], port: int, client_id: str, password: str,
              **kwargs: Any) -> Client:
    c = Client(port, client_id, password, **kwargs)
    made.append(c)
    assert c.connect() == 0, f"{client_id} refused"
    return c


# -- the process ----------------------------------------------------------------------
def test_falls_back_to_the_embedded_broker_and_says_so(embedded: TestBroker) -> None:
    assert embedded.process.embedded
    # `vitrine device add` finds the broker through the pid file, as with Mosquitto.
    assert int((embedded.data_dir / "mosquitto.pid").read_text()) == embedded.process.proc.pid
    log = (embedded.data_dir / "broker.log").read_text()
    assert "EMBEDDED broker (amqtt" in log and "MQTT 3.1.1 only" in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_it_cleanly(embedded: TestBroker, sig: signal.Signals) -> None:
    embedded.process.proc.send_signal(sig)
    assert embedded.process.proc.wait(WAIT) == 0
    assert not (embedded.data_dir / "mosquitto.pid").exists()
    assert "embedded broker stopped" in (embedded.data_dir / "broker.log").read_text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", embedded.port), timeout=1).close()


def test_without_amqtt_or_mosquitto_start_broker_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(vitrine.broker, "mosquitto_binary", lambda: None)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "amqtt" else real_find_spec(name, *a))
    with pytest.raises(FileNotFoundError, match="embedded-broker"):
        start_broker(BrokerSettings(data_dir=tmp_path, port=free_port()))


# -- authentication ---------------------------------------------------------------------
def test_device_publishes_qos1_to_the_edge(embedded: TestBroker, clients: list[Client]) -> None:
    password = embedded.add("nfc-03")  # provisioned while running: SIGHUP reload
    edge = connected(clients, embedded.port, "vitrine-edge", "edge-pw", username="edge",
                     clean=False)
    assert edge.subscribe(device_subscription(STORE)) == 1
    dev = connected(clients, embedded.port, "nfc-03", password)
    dev.publish(f"{DEVICES}/nfc-03/nfc", b'{"tap": 1}')  # PUBACK received
    assert edge.wait(lambda: edge.messages)
    (msg,) = edge.messages
    assert (msg.topic, msg.payload, msg.qos) == (f"{DEVICES}/nfc-03/nfc", b'{"tap": 1}', 1)


@pytest.mark.parametrize("client_id, username, password", [
    ("nfc-01", "nfc-01", "not-the-password"),
    ("nfc-01", "nfc-01", ""),
    ("ghost", "ghost", "ghost-pw"),
])
def test_bad_credentials_are_refused(embedded: TestBroker, client_id: str, username: str,
                                     password: str) -> None:
    c = Client(embedded.port, client_id, password, username=username)
    try:
        assert c.connect() == REFUSED
    finally:
        c.close()


def test_anonymous_client_is_refused(embedded: TestBroker) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anon", protocol=mqtt.MQTTv311)
    c.reconnect_delay_set(0.1, 0.1)
    codes: list[int] = []
    got = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: (codes.append(rc.value), got.set())
    c.connect("127.0.0.1", embedded.port)
    c.loop_start()
    try:
        assert got.wait(WAIT) and codes[0] == REFUSED
    finally:
        c.loop_stop()


def test_revoked_device_loses_its_rights_at_the_reload(embedded: TestBroker,
                                                      clients: list[Client]) -> None:
    edge = connected(clients, embedded.port, "vitrine-edge", "edge-pw", username="edge")
    edge.subscribe(device_subscription(STORE))
    dev = connected(clients, embedded.port, "nfc-02", "nfc-02-pw")
    embedded.provisioner.revoke("nfc-02")
    embedded.process.reload()
    time.sleep(0.2)  # SIGHUP is handled asynchronously
    dev.publish(f"{DEVICES}/nfc-02/nfc", b"after revocation")  # still connected: dropped
    again = Client(embedded.port, "nfc-02", "nfc-02-pw")
    try:
        assert again.connect() == REFUSED
    finally:
        again.close()
    connected(clients, embedded.port, "nfc-01", "nfc-01-pw").publish(f"{DEVICES}/nfc-01/nfc",
                                                                       b"other device")
    # Published (and acknowledged) first, the revoked device's message would have been
    # queued to the edge before "other device": that one arriving is the marker.
    assert edge.wait(lambda: b"other device" in edge.payloads())
    assert edge.payloads() == [b"other device"]


def test_mqtt5_clients_are_refused_with_a_clear_reason(embedded: TestBroker) -> None:
    """amqtt speaks 3.1.1 only: this is why the demo runs its devices with protocol="3.1.1"."""
    c = Client(embedded.port, "nfc-01", "nfc-01-pw", protocol=mqtt.MQTTv5)
    try:
        assert c.connect() == 0x84  # unsupported protocol version
    finally:
        c.close()
    assert "MQTT protocol level 5" in (embedded.data_dir / "broker.log").read_text()


def test_wrong_password_cannot_take_over_the_edge_session(embedded: TestBroker,
                                                          clients: list[Client]) -> None:
    """amqtt alone would drop the edge's session, queued messages included, for this CONNECT."""
    edge = connected(clients, embedded.port, "vitrine-edge", "edge-pw", username="edge",
                     clean=False)
    edge.subscribe(device_subscription(STORE))
    for clean in (True, False):
        impostor = Client(embedded.port, "vitrine-edge", "guess", username="edge", clean=clean)
        try:
            assert impostor.connect() == REFUSED
        finally:
            impostor.close()
    dev = connected(clients, embedded.port, "nfc-01", "nfc-01-pw")
    dev.publish(f"{DEVICES}/nfc-01/nfc", b"still here")
    assert edge.wait(lambda: edge.messages), "the edge lost its connection or its subscription"
    assert not edge.disconnected.is_set()


# -- ACL ------------------------------------------------------------------------------------
def test_device_cannot_publish_to_another_devices_topic(embedded: TestBroker,
                                                        clients: list[Client]) -> None:
    edge = connected(clients, embedded.port, "vitrine-edge", "edge-pw", username="edge")
    edge.subscribe(device_subscription(STORE))
    dev = connected(clients, embedded.port, "nfc-01", "nfc-01-pw")
    dev.publish(f"{DEVICES}/nfc-02/nfc", b"forged")  # MQTT 3.1.1: acked, then dropped
    dev.publish(f"vitrine/v1/{STORE}/events/interest", b"forged")
    dev.publish(f"{DEVICES}/nfc-01/nfc", b"own")
    # A forged message, had it been routed, would have arrived before "own" (the marker).
    assert edge.wait(lambda: b"own" in edge.payloads())
    assert edge.payloads() == [b"own"]


def test_device_cannot_subscribe_beyond_its_acl(embedded: TestBroker,
                                                clients: list[Client]) -> None:
    dev = connected(clients, embedded.port, "nfc-01", "nfc-01-pw")
    assert dev.subscribe(f"{DEVICES}/#") == 0x80
    assert dev.subscribe(f"vitrine/v1/{STORE}/events/+") == 0x80
    observer = connected(clients, embedded.port, "observer", "observer-pw")
    assert observer.subscribe(f"vitrine/v1/{STORE}/events/+") == 1
    assert observer.subscribe(f"{DEVICES}/+/state") == 1
    assert observer.subscribe(f"{DEVICES}/+/nfc") == 0x80


def test_last_will_on_another_devices_topic_is_refused(embedded: TestBroker) -> None:
    c = Client(embedded.port, "nfc-01", "nfc-01-pw")
    c.c.will_set(f"{DEVICES}/nfc-02/state", b'{"state": "offline"}', qos=1, retain=True)
    try:
        assert c.connect() == REFUSED
    finally:
        c.close()


# -- persistent sessions -----------------------------------------------------------------------
def test_persistent_session_gets_in_flight_and_offline_messages(
        embedded: TestBroker, clients: list[Client]) -> None:
    """The edge acks after its commit: a message it never acked must come back, then the rest."""
    edge = connected(clients, embedded.port, "vitrine-edge", "edge-pw", username="edge",
                     clean=False, manual_ack=True)
    edge.subscribe(device_subscription(STORE))
    dev = connected(clients, embedded.port, "nfc-01", "nfc-01-pw")
    dev.publish(f"{DEVICES}/nfc-01/nfc", b"m1")
    assert edge.wait(lambda: edge.messages)
    # The edge "crashes" before acknowledging m1: socket cut, no DISCONNECT.
    sock = edge.c.socket()
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)
    assert edge.disconnected.wait(WAIT)
    edge.c.loop_stop()
    clients.remove(edge)
    time.sleep(0.2)  # let the broker see the session go offline
    for i in (2, 3):
        dev.publish(f"{DEVICES}/nfc-01/nfc", f"m{i}".encode())
    back = connected(clients, embedded.port, "vitrine-edge", "edge-pw", username="edge",
                     clean=False)
    assert back.wait(lambda: len(back.messages) >= 3), back.payloads()
    assert back.payloads() == [b"m1", b"m2", b"m3"]


# -- the real proof: an edge node on the embedded broker -----------------------------------------
def test_edge_node_commits_an_interest_event(embedded: TestBroker, tmp_path: Path) -> None:
    layout = {
        "store_id": STORE,
        "zones": [{"id": "shoes", "name": "Shoes"}],
        "products": [{"gtin": GTIN, "name": "Trail shoe", "brand": "Acme", "category": "shoes",
                      "price_cents": 8999, "currency": "EUR"}],
        "devices": [{"id": "nfc-01", "kind": "nfc_reader", "zone": "shoes", "shelf": "S1"}],
        "tags": [],
    }
    layout_file = tmp_path / "layout.json"
    layout_file.write_text(json.dumps(layout))
    cfg = load_config(env={}, store_id=STORE, db_path=tmp_path / "edge.db",
                      mqtt_port=embedded.port, mqtt_password="edge-pw",
                      loyalty_keys="k1:" + bytes(range(32)).hex(), layout_path=layout_file,
                      panel_port=0)
    assert cfg.mqtt_protocol == "3.1.1"  # the edge's default, which amqtt speaks
    events: list[tuple[str, dict[str, Any]]] = []
    seen = threading.Event()
    node = EdgeNode(cfg)
    node.listeners.append(lambda kind, ev: (events.append((kind, ev)), seen.set()))
    node.start()
    dev = DeviceClient("nfc-01", "nfc_reader", "nfc-01-pw", store_id=STORE, port=embedded.port,
                       protocol="3.1.1", heartbeat_s=3600)
    try:
        assert dev.start(wait=WAIT), "device could not connect over MQTT 3.1.1"
        msg_id = dev.tap(TagRead(uid="04aabbccddeeff",
                                 ndef=encode_uri(f"https://id.gs1.org/01/{GTIN}"),
                                 tag_type="Type2Tag"))
        assert dev.flush(WAIT)
        assert seen.wait(WAIT), "the edge derived no event"
    finally:
        dev.close(flush_timeout=1)
        node.stop()
    (kind, ev), = events
    assert kind == "interest" and ev["gtin"] == GTIN and ev["device_id"] == "nfc-01"
    db = sqlite3.connect(cfg.db_path)
    try:
        assert db.execute("SELECT device_id, msg_id, channel FROM events").fetchall() == [
            ("nfc-01", msg_id, "nfc")]
        assert db.execute("SELECT kind, event_id FROM outbox").fetchall() == [
            ("interest", ev["event_id"])]
    finally:
        db.close()


# -- the pieces, without a broker -----------------------------------------------------------------
def test_verify_password_accepts_provisioning_hashes_only() -> None:
    encoded = hash_password("s3cret")
    assert verify_password("s3cret", encoded)
    assert not verify_password("s3cret ", encoded)
    assert not verify_password("", encoded)
    _, seven, iterations, salt, digest = encoded.split("$")
    other = hashlib.pbkdf2_hmac("sha512", b"s3cret", base64.b64decode(salt), 1000)
    assert verify_password("s3cret", f"$7$1000${salt}${base64.b64encode(other).decode()}")
    for bad in ("", "s3cret", f"$6${salt}${digest}", f"$7$x${salt}${digest}",
                f"$7$0${salt}${digest}", f"$7${iterations}$!!!${digest}",
                f"$7${iterations}${salt}$", f"$7${iterations}${salt}${digest}$extra",
                f"$7${iterations}${salt}${base64.b64encode(base64.b64decode(digest)[:8]).decode()}"):
        assert not verify_password("s3cret", bad), bad


def test_acl_follows_the_rendered_provisioning_acl() -> None:
    principals = [Principal(n, r, "", 0.0) for n, r in [
        ("edge", "edge"), ("panel", "observer"), ("nfc-1", "nfc_reader"),
        ("kiosk-1", "kiosk"), ("sign-1", "signage")]]
    acl = Acl.parse(render_acl(STORE, principals))
    base = f"vitrine/v1/{STORE}"
    allowed = [
        ("nfc-1", f"{base}/devices/nfc-1/nfc", "write"),
        ("nfc-1", f"{base}/devices/nfc-1/state", "write"),
        ("edge", f"{base}/devices/nfc-1/nfc", "read"),
        ("edge", f"{base}/events/interest", "write"),
        ("edge", f"{base}/edge/state", "write"),
        ("edge", f"{base}/kiosk/kiosk-1/cmd", "write"),
        ("panel", f"{base}/devices/nfc-1/state", "read"),
        ("kiosk-1", f"{base}/kiosk/kiosk-1/cmd", "read"),
        ("kiosk-1", f"{base}/req/kiosk-1", "write"),
        ("kiosk-1", f"{base}/reply/kiosk-1", "read"),
        ("edge", f"{base}/req/kiosk-1", "read"),
        ("edge", f"{base}/reply/kiosk-1", "write"),
        ("sign-1", f"{base}/signage/sign-1/cmd", "read"),
        ("sign-1", f"{base}/edge/state", "read"),
    ]
    denied = [
        ("nfc-1", f"{base}/devices/nfc-2/nfc", "write"),
        ("nfc-1", f"{base}/devices/nfc-1/nfc", "read"),
        ("nfc-1", f"{base}/events/interest", "write"),
        ("nfc-1", "vitrine/v1/other-store/devices/nfc-1/nfc", "write"),
        ("edge", f"{base}/events/interest", "read"),
        ("panel", f"{base}/devices/nfc-1/nfc", "read"),
        ("panel", f"{base}/events/interest", "write"),
        ("kiosk-1", f"{base}/kiosk/kiosk-2/cmd", "read"),
        # events carry customer ids: only observers (staff tools) read them
        ("kiosk-1", f"{base}/events/presence", "read"),
        ("sign-1", f"{base}/events/interest", "read"),
        ("kiosk-1", f"{base}/reply/kiosk-2", "read"),
        ("kiosk-1", f"{base}/req/kiosk-2", "write"),
        ("sign-1", f"{base}/req/sign-1", "write"),
        ("sign-1", f"{base}/kiosk/sign-1/cmd", "read"),
    ]
    for user, topic, access in allowed:
        assert acl.allows(user, user, topic, access), (user, topic, access)
    for user, topic, access in denied:
        assert not acl.allows(user, user, topic, access), (user, topic, access)
    # A username that is a wildcard must not turn a pattern into a wildcard.
    assert not acl.allows("+", "+", f"{base}/devices/nfc-1/nfc", "write")
    assert not acl.allows("a/b", "a/b", f"{base}/devices/a/b/nfc", "write")


def test_acl_deny_wins_and_topic_lines_before_any_user_are_ignored() -> None:
    acl = Acl.parse("topic readwrite #\nuser u\ntopic a/#\ntopic deny a/secret\n"
                    "topic read b/+\n")
    assert acl.allows("u", "c", "a/x", "write") and acl.allows("u", "c", "a/x", "read")
    assert not acl.allows("u", "c", "a/secret", "read")
    assert acl.allows("u", "c", "b/x", "read") and not acl.allows("u", "c", "b/x", "write")
    assert not acl.allows("v", "c", "z", "read")  # the anonymous "#" is not for users


@pytest.mark.parametrize("rule, topic_filter, covered", [
    ("a/#", "a/#", True), ("a/#", "a/b/+", True), ("a/#", "a", True),
    ("a/+/c", "a/+/c", True), ("a/+/c", "a/b/c", True), ("a/b/c", "a/+/c", False),
    ("a/+", "a/#", False), ("a/#", "#", False), ("a/b", "a/b/c", False),
])
def test_filter_covers(rule: str, topic_filter: str, covered: bool) -> None:
    assert filter_covers(rule, topic_filter) is covered


@pytest.mark.parametrize("topic_filter, topic, matches", [
    ("a/#", "a", True), ("a/#", "a/b/c", True), ("a/+", "a/b", True), ("a/+", "a/b/c", False),
    ("+/+", "a/b", True), ("a/b", "a/b", True), ("a/b", "a/c", False), ("#", "x/y", True),
])
def test_topic_matches(topic_filter: str, topic: str, matches: bool) -> None:
    assert topic_matches(topic_filter, topic) is matches


def _start_edge(cfg: Any, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VITRINE_STORE_ID": cfg.store_id, "VITRINE_DB_PATH": str(cfg.db_path),
           "VITRINE_MQTT_PORT": str(cfg.mqtt_port), "VITRINE_MQTT_PASSWORD": cfg.mqtt_password,
           "VITRINE_LOYALTY_KEYS": cfg.loyalty_keys, "VITRINE_LAYOUT_PATH": str(cfg.layout_path),
           "VITRINE_PANEL_PORT": "0"}  # no web panel: it would want port 8080
    return subprocess.Popen([sys.executable, "-m", "edge", "--metrics-every", "0"], env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115


def test_edge_sigkill_mid_burst_loses_nothing(embedded: TestBroker, tmp_path: Path,
                                              clients: list[Client]) -> None:
    """The edge's ack-after-commit guarantee holds on the embedded broker too."""
    devices = [f"qr-k{i}" for i in range(4)]
    per_device = 500
    creds = embedded.add_many([(d, "qr_scanner") for d in devices])
    layout = {"store_id": STORE, "zones": [{"id": "z", "name": "Z"}],
              "products": [{"gtin": GTIN, "name": "Trail shoe", "brand": "Acme",
                            "category": "shoes", "price_cents": 8999, "currency": "EUR"}],
              "devices": [{"id": d, "kind": "qr_scanner", "zone": "z"} for d in devices],
              "tags": []}
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    cfg = load_config(env={}, store_id=STORE, db_path=tmp_path / "edge.db",
                      mqtt_port=embedded.port, mqtt_password="edge-pw",
                      loyalty_keys="k1:" + bytes(range(32)).hex(),
                      layout_path=tmp_path / "layout.json")

    def committed() -> int:
        db = sqlite3.connect(cfg.db_path)
        try:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet
            return 0
        finally:
            db.close()

    def wait_for(predicate, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not met in time"
            time.sleep(0.02)

    observer = connected(clients, embedded.port, "observer", "observer-pw")

    def wait_online(after: float) -> None:
        n = len(observer.messages)
        observer.subscribe(f"vitrine/v1/{STORE}/edge/state")  # retained state, again
        assert observer.wait(lambda: any(
            json.loads(m.payload).get("ts", 0) >= after for m in observer.messages[n:]),
            timeout=20), "edge did not come online"

    log = tmp_path / "edge.log"
    t0 = time.time()
    edge = _start_edge(cfg, log)
    try:
        wait_online(t0)
        pubs = [connected(clients, embedded.port, d, creds[d]) for d in devices]
        infos = []
        for i in range(per_device):
            for d, c in zip(devices, pubs, strict=True):
                payload = json.dumps({"msg_id": f"{d}-{i}", "ts": time.time(),
                                      "text": f"https://id.gs1.org/01/{GTIN}"})
                infos.append(c.c.publish(f"{DEVICES}/{d}/qr", payload, qos=1))
            if i == per_device // 4:
                wait_for(lambda: committed() > 0)
                edge.send_signal(signal.SIGKILL)
                edge.wait()
                t_restart = time.time()
                edge = _start_edge(cfg, log)
                wait_online(t_restart)
            time.sleep(0.002)
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()
        total = len(devices) * per_device
        # A marker sent after every PUBACK reaches the edge after the whole burst: once it
        # is committed, any duplicate would be too.
        pubs[0].publish(f"{DEVICES}/{devices[0]}/qr",
                        json.dumps({"msg_id": "marker", "ts": time.time(),
                                    "text": f"https://id.gs1.org/01/{GTIN}"}).encode())
        def marker_in() -> bool:
            db = sqlite3.connect(cfg.db_path)
            try:
                return db.execute("SELECT 1 FROM events WHERE msg_id = 'marker'").fetchone()
            finally:
                db.close()

        wait_for(marker_in)
        db = sqlite3.connect(cfg.db_path)
        try:
            got = [r[0] for r in db.execute("SELECT msg_id FROM events")]
            (n_outbox,) = db.execute("SELECT count(*) FROM outbox").fetchone()
            (marker,) = db.execute("SELECT count(*) FROM events WHERE msg_id = 'marker'"
                                   ).fetchone()
        finally:
            db.close()
        assert marker == 1
        assert sorted(got) == sorted([*(f"{d}-{i}" for d in devices for i in range(per_device)),
                                      "marker"])
        assert n_outbox == total + 1
    finally:
        if edge.poll() is None:
            edge.send_signal(signal.SIGTERM)
            edge.wait(15)


def test_demo_runs_on_the_embedded_broker(tmp_path: Path) -> None:
    """`vitrine demo` on a machine without Mosquitto: devices fall back to MQTT 3.1.1."""
    script = ("import sys, vitrine.broker\n"
              "vitrine.broker.mosquitto_binary = lambda: None\n"
              "from vitrine.demo import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    var = tmp_path / "demo"
    # Stopped (Ctrl-C) once the devices are online, the NFC station's tap has reached the
    # edge, and more than 5 interest events are in (the DONE line's counts are asserted after).
    out = run_demo_until(["-c", script, "--speed", "40", "--var", str(var)],
                         [r"EMBEDDED pure-Python broker",
                          r"SIM\s+(\d+)/\1 simulated devices online",
                          r"EDGE\s+interest .*\[nfc-station-01 nfc\]"],
                         ready=lambda text: len(re.findall(r"EDGE\s+interest", text)) > 5)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.seen_all, out.stdout[-3000:]
    assert "EMBEDDED pure-Python broker" in out.stdout
    assert re.search(r"SIM\s+(\d+)/\1 simulated devices online", out.stdout), out.stdout[-2000:]
    assert re.search(r"EDGE\s+interest .*\[nfc-station-01 nfc\]", out.stdout), "NFC station"
    done = re.search(r"accepted (\d+).*interest (\d+)", out.stdout)
    assert done and int(done.group(1)) > 5 and int(done.group(2)) > 5, out.stdout[-2000:]
    assert "Traceback" not in out.stderr
    log = (var / "broker.log").read_text()
    assert "denied" not in log and "refused" not in log, log[-2000:]


def test_device_client_rejects_an_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="protocol"):
        DeviceClient("nfc-01", "nfc_reader", "pw", store_id=STORE, protocol="3.1")


def test_a_client_gets_no_retained_message_it_did_not_subscribe_to(
        embedded: TestBroker, clients: list[Client]) -> None:
    """amqtt alone hands every new client the retained messages of others' subscriptions."""
    edge = connected(clients, embedded.port, "vitrine-edge", "edge-pw", username="edge")
    edge.subscribe(device_subscription(STORE))
    other = connected(clients, embedded.port, "nfc-02", "nfc-02-pw")
    info = other.c.publish(f"{DEVICES}/nfc-02/state", b'{"state": "online"}', qos=1, retain=True)
    assert other.wait(lambda: info.mid in other.acked)
    assert edge.wait(lambda: edge.messages)
    for clean in (True, False):
        dev = connected(clients, embedded.port, "nfc-01", "nfc-01-pw", clean=clean)
        time.sleep(0.3)  # amqtt sends them right after CONNACK
        assert dev.messages == []
        dev.close()
        clients.remove(dev)
    # The subscriber itself still gets retained messages when it subscribes.
    late = connected(clients, embedded.port, "observer", "observer-pw")
    late.subscribe(f"{DEVICES}/+/state")
    assert late.wait(lambda: late.messages)
    assert late.messages[0].retain and late.payloads() == [b'{"state": "online"}']
