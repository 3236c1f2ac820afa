"""The broker's TLS listener, with certificates made the way broker_config/README.md says.

A throw-away store CA and broker certificate (subjectAltName IP:127.0.0.1 and
DNS:localhost) are generated with the ``openssl`` CLI, following the README's
steps; a real Mosquitto then serves both the plain listener (the edge) and the
TLS one (LAN devices). Devices that trust the store CA get in; a client that
trusts another CA, that connects to an address the certificate does not name,
or that speaks plain MQTT to the TLS port does not.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.topics import device_subscription, device_topic
from firmware_sim.device import DeviceClient
from tests.conftest import TestBroker, make_broker
from vitrine.broker import free_port, wait_for_port

pytestmark = pytest.mark.integration

WAIT = 5.0


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    #: A CA that did not sign the broker's certificate.
    other_ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, f"openssl {' '.join(args)}:\n{out.stderr}"


def _make_ca(d: Path, name: str) -> None:
    """README step 1 (2048-bit instead of 3072 to keep the test fast)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "2", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=Vitrine {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("tls")
    _make_ca(d, "ca")
    _make_ca(d, "other-ca")
    # README steps 2 and 3: key + request, then signed with the SANs clients check.
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out",
             "broker.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "broker.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "broker.crt", "-days", "2", "-sha256",
             "-extfile", "broker.ext", cwd=d)
    _openssl("verify", "-CAfile", "ca.crt", "broker.crt", cwd=d)  # README step 4
    return Pki(d / "ca.crt", d / "broker.crt", d / "broker.key", d / "other-ca.crt")


def _wait_for_tls(port: int, cafile: Path, timeout: float = 10.0) -> str:
    """Wait until the TLS listener completes a verified handshake; return the TLS version.

    ``start_broker`` only waits for the plain port; Mosquitto opens its
    listeners one after the other, so the TLS one gets its own bounded wait.
    """
    wait_for_port(port, timeout=timeout)
    ctx = ssl.create_default_context(cafile=str(cafile))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw, \
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return tls.version() or "?"
        except (ssl.SSLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[tuple[TestBroker, int]]:
    tls_port = free_port()
    tb = make_broker(tmp_path, tls_port=tls_port, tls_cafile=str(pki.ca),
                     tls_certfile=str(pki.cert), tls_keyfile=str(pki.key))
    try:
        version = _wait_for_tls(tls_port, pki.ca)
        assert version in ("TLSv1.2", "TLSv1.3")  # tls_version tlsv1.2 is a minimum
        yield tb, tls_port
    finally:
        tb.process.stop()


class EdgeSubscriber:
    """The edge's role on the plain listener: every device message of the store."""

    def __init__(self, broker: TestBroker) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.cond = threading.Condition()
        subscribed = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edge-tls-test",
                        protocol=mqtt.MQTTv311)
        c.username_pw_set("edge", "edge-pw")
        c.on_connect = lambda cl, *a: cl.subscribe(device_subscription(broker.store_id), qos=1)
        c.on_subscribe = lambda *a: subscribed.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        self.client = c
        assert subscribed.wait(WAIT), "edge subscriber could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def wait_for(self, topic: str) -> dict:
        with self.cond:
            assert self.cond.wait_for(lambda: any(m.topic == topic for m in self.messages),
                                      WAIT), f"nothing on {topic}"
            return json.loads(next(m for m in self.messages if m.topic == topic).payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def edge(tls_broker: tuple[TestBroker, int]) -> Iterator[EdgeSubscriber]:
    sub = EdgeSubscriber(tls_broker[0])
    yield sub
    sub.close()


def _tls_client(name: str, password: str, cafile: Path) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.username_pw_set(name, password)
    c.tls_set(ca_certs=str(cafile))
    return c


def test_device_connects_over_tls_and_its_birth_reaches_the_edge(
        tls_broker: tuple[TestBroker, int], edge: EdgeSubscriber, pki: Pki) -> None:
    broker, tls_port = tls_broker
    password = broker.add("nfc-tls-01", "qr_scanner")
    dev = DeviceClient("nfc-tls-01", "qr_scanner", password, store_id=broker.store_id,
                       host="127.0.0.1", port=tls_port, cafile=str(pki.ca), heartbeat_s=3600)
    try:
        assert dev.start(wait=WAIT), "device could not connect over TLS"
        birth = edge.wait_for(device_topic(broker.store_id, "nfc-tls-01", "state"))
        assert birth["state"] == "online" and birth["kind"] == "qr_scanner"
        dev.scan("]Q109506000134352")
        assert dev.flush(WAIT)
        edge.wait_for(device_topic(broker.store_id, "nfc-tls-01", "qr"))
    finally:
        dev.close(flush_timeout=1)
    assert dev.stats.acked == 1 and dev.stats.rejected == 0


def test_device_connecting_by_dns_name_over_tls(tls_broker: tuple[TestBroker, int],
                                                edge: EdgeSubscriber, pki: Pki) -> None:
    """"localhost" is in subjectAltName too, and the name is what gets verified."""
    broker, tls_port = tls_broker
    password = broker.add("nfc-tls-02")
    c = _tls_client("nfc-tls-02", password, pki.ca)
    codes: list[int] = []
    got = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: (codes.append(rc.value), got.set())
    c.connect("localhost", tls_port)
    c.loop_start()
    try:
        assert got.wait(WAIT) and codes == [0]
        c.publish(device_topic(broker.store_id, "nfc-tls-02", "state"),
                  b'{"state": "online", "kind": "nfc_reader"}', qos=1).wait_for_publish(WAIT)
        assert edge.wait_for(device_topic(broker.store_id, "nfc-tls-02", "state"))
    finally:
        c.disconnect()
        c.loop_stop()


@pytest.mark.parametrize("case", ["untrusted_ca", "address_not_in_certificate"])
def test_tls_handshake_fails_without_a_verified_certificate(
        tls_broker: tuple[TestBroker, int], pki: Pki, case: str) -> None:
    broker, tls_port = tls_broker
    password = broker.add("nfc-tls-03")
    # 127.0.0.2 reaches the same listener (all of 127/8 is loopback on Linux) but
    # is not in subjectAltName: the README's "IP address mismatch".
    cafile, host = (pki.other_ca, "127.0.0.1") if case == "untrusted_ca" else (pki.ca,
                                                                               "127.0.0.2")
    c = _tls_client("nfc-tls-03", password, cafile)
    with pytest.raises(ssl.SSLCertVerificationError) as err:
        c.connect(host, tls_port)  # paho does the handshake inside connect()
    assert ("certificate verify failed" in str(err.value)
            if case == "untrusted_ca" else "IP address mismatch" in str(err.value))


def _connect_packet(client_id: str, username: str, password: str) -> bytes:
    """A plain MQTT 3.1.1 CONNECT (clean session, username and password, keepalive 30)."""
    def s(text: str) -> bytes:
        raw = text.encode()
        return len(raw).to_bytes(2, "big") + raw

    body = s("MQTT") + bytes([4, 0xC2]) + (30).to_bytes(2, "big") + s(client_id) + s(
        username) + s(password)
    assert len(body) < 128
    return bytes([0x10, len(body)]) + body


def _first_bytes(port: int, data: bytes) -> bytes:
    """Send ``data`` to ``port``; return the first bytes of the answer (b"" if closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(data)
        try:
            return sock.recv(16)
        except ConnectionResetError:
            return b""


def test_plain_mqtt_to_the_tls_port_fails(tls_broker: tuple[TestBroker, int]) -> None:
    broker, tls_port = tls_broker
    password = broker.add("nfc-tls-04")
    connect = _connect_packet("nfc-tls-04", "nfc-tls-04", password)
    # The very same CONNECT is accepted on the plain listener...
    assert _first_bytes(broker.port, connect) == b"\x20\x02\x00\x00"
    # ...and on the TLS listener it is not a ClientHello: no CONNACK, connection closed.
    answer = _first_bytes(tls_port, connect)
    assert not answer.startswith(b"\x20"), answer
