"""The ACL matrix of docs/protocol.md section 2.1, checked cell by cell on the real Mosquitto.

One principal per role tries to publish, receive, retain and leave a last will on every topic
family. "Nothing arrived" is never a sleep: Mosquitto writes its per-packet debug log
("Sending PUBLISH to <client> ...") before it acknowledges the publisher, so once the PUBACK
(or, for a will, the "closed its connection" line) is in, the log says for certain who the
message went to; every delivery the log shows is then also waited for on the subscriber.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.topics import COMMAND_FAMILIES, DEVICE_CHANNELS, PREFIX, REPLY_FAMILY, REQUEST_FAMILY
from tests.conftest import STORE, TestBroker, make_broker
from vitrine.provisioning import ROLES as PROVISIONED

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
SECTION = "### 2.1 ACL matrix"
#: The {other} device of each family: a device of the kind that family belongs to.
OTHERS = {"devices": ("other-dev", "nfc_reader"), "kiosk": ("other-kiosk", "kiosk"),
          "req": ("other-kiosk", "kiosk"), "reply": ("other-kiosk", "kiosk"),
          "signage": ("other-signage", "signage"), "label": ("other-label", "shelf_label")}
WITNESS = "witness-edge"  # a second edge principal, so that an edge's will has a reader
REFUSED = 0x87


def read_matrix(text: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """(roles, {topic template: {role: cell}}) from the first table after SECTION."""
    body = text.split(SECTION, 1)[1]
    lines = [ln.strip() for ln in body.splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| Topic |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    roles = header[1:]
    rows: dict[str, dict[str, str]] = {}
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        cells = [c.strip() for c in ln.strip("|").split("|")]
        topic = cells[0].strip("`")
        assert len(cells) == len(header), f"row {topic!r} has {len(cells)} cells"
        for cell in cells[1:]:
            assert cell == "-" or re.fullmatch(r"P?S?R?W?", cell), f"bad cell {cell!r}"
        rows[topic] = dict(zip(roles, cells[1:], strict=True))
    return roles, rows


ROLES, MATRIX = read_matrix(DOC.read_text("utf-8"))


def principal(role: str) -> str:
    return f"t-{role}"


def full_topic(template: str, name: str) -> str:
    other = OTHERS.get(template.split("/", 1)[0], ("other-dev", ""))[0]
    return f"{PREFIX}/{STORE}/" + template.format(self=name, other=other)


@dataclass
class Peer:
    """One connected principal, subscribed to the whole store."""

    name: str
    client: mqtt.Client
    received: list[tuple[str, bytes, bool]] = field(default_factory=list)
    acks: dict[int, int] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self.cond:
            assert self.cond.wait_for(lambda: info.mid in self.acks, 5), f"{self.name}: no PUBACK"
            return self.acks.pop(info.mid)

    def wait_received(self, topic: str, payload: bytes, *, retained: bool | None = None) -> bool:
        def seen() -> bool:
            return any(t == topic and p == payload and (retained is None or r == retained)
                       for t, p, r in self.received)

        with self.cond:
            return self.cond.wait_for(seen, 5)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5), f"{self.name}: no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def new_client(name: str, will: tuple[str, bytes] | None = None,
               *, threaded: bool = True) -> tuple[mqtt.Client, int]:
    """Connect ``name``; without ``threaded`` nobody runs its network loop after CONNACK
    (a will client whose socket the test closes: no thread to stop)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.username_pw_set(name, f"{name}-pw")
    if will:
        c.will_set(will[0], will[1], qos=1)
    result: list[int] = []
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        result.append(reason_code.value)
        done.set()

    c.on_connect = on_connect
    c.reconnect_delay_set(60, 60)  # never during a check
    c.connect("127.0.0.1", broker_port(), keepalive=60)
    if threaded:
        c.loop_start()
        assert done.wait(5), f"{name}: no CONNACK"
    else:
        deadline = time.monotonic() + 5
        while not done.is_set():
            assert time.monotonic() < deadline, f"{name}: no CONNACK"
            c.loop(0.05)
    return c, result[0]


_PORT: list[int] = []


def broker_port() -> int:
    return _PORT[0]


def connect_peer(name: str) -> Peer:
    c, rc = new_client(name)
    assert rc == 0, f"{name} refused: {rc:#x}"
    peer = Peer(name, c)

    def on_message(client, userdata, msg):
        with peer.cond:
            peer.received.append((msg.topic, msg.payload, bool(msg.retain)))
            peer.cond.notify_all()

    def on_publish(client, userdata, mid, reason_code, properties):
        with peer.cond:
            peer.acks[mid] = reason_code.value
            peer.cond.notify_all()

    c.on_message = on_message
    c.on_publish = on_publish
    peer.subscribe(f"{PREFIX}/{STORE}/#")
    return peer


class BrokerLog:
    def __init__(self, broker: TestBroker):
        self.path = broker.data_dir / "broker.log"

    def offset(self) -> int:
        return self.path.stat().st_size

    def since(self, offset: int) -> str:
        return self.path.read_bytes()[offset:].decode(errors="replace")

    def sent_to(self, offset: int, topic: str) -> set[str]:
        """Clients Mosquitto sent a PUBLISH on ``topic`` since ``offset``."""
        pat = re.compile(r"Sending PUBLISH to (\S+) \(d\d, q\d, r\d, m\d+, '" + re.escape(topic)
                         + "'")
        return set(pat.findall(self.since(offset)))


def observe(broker: TestBroker) -> dict[tuple[str, str], str]:
    """Try everything; return {(topic template, role): cell} as the broker behaved."""
    log = BrokerLog(broker)
    names = {role: principal(role) for role in ROLES}
    others = sorted({name for name, _ in OTHERS.values()})
    peers = {n: connect_peer(n) for n in [*names.values(), *others, WITNESS]}
    seen: dict[tuple[str, str], str] = {}
    n = 0

    def barrier() -> None:
        """A round trip through the broker: what it did before is in its log now."""
        own = full_topic("devices/{self}/telemetry", WITNESS)
        assert peers[WITNESS].publish(own, b"barrier") != REFUSED

    def token(kind: str) -> bytes:
        nonlocal n
        n += 1
        return f"{kind}-{n}".encode()

    try:
        for template in MATRIX:
            for role, me in names.items():
                topic = full_topic(template, me)
                cell = ""
                # P: the broker's PUBACK says whether it accepted the publish.
                rc = peers[me].publish(topic, token("P"))
                assert rc in (0x00, 0x10, REFUSED), f"{me} -> {topic}: PUBACK {rc:#x}"
                if rc != REFUSED:
                    cell += "P"
                # S: someone allowed to publish there does; did it reach `me`?
                for pub in [me, *others, *names.values()]:
                    probe = token("S")
                    at = log.offset()
                    if peers[pub].publish(topic, probe) == REFUSED:
                        continue
                    barrier()
                    if me in log.sent_to(at, topic):
                        assert peers[me].wait_received(topic, probe), f"{me} lost {probe!r}"
                        cell += "S"
                    break
                # R: retained publish accepted, and a new subscription gets it back.
                probe = token("R")
                at = log.offset()
                if peers[me].publish(topic, probe, retain=True) != REFUSED:
                    barrier()
                    readers = log.sent_to(at, topic)
                    reader = peers[sorted(readers)[0]] if readers else None
                    if reader is None:
                        cell += "R"  # accepted, and nobody can read it: nothing to check
                    else:
                        reader.subscribe(topic)
                        if reader.wait_received(topic, probe, retained=True):
                            cell += "R"
                    assert peers[me].publish(topic, b"", retain=True) != REFUSED
                seen[(template, role)] = cell
        # W: one role at a time drops its connection with a will on each topic.
        for role, me in names.items():
            peers.pop(me).close()
            for template in MATRIX:
                topic = full_topic(template, me)
                will = token("W")
                c, rc = new_client(me, will=(topic, will), threaded=False)
                if rc == 0:
                    at = log.offset()
                    c.socket().close()  # no DISCONNECT: the broker must publish the will
                    closed = f"Client {me} closed its connection."
                    deadline = time.monotonic() + 5
                    while closed not in log.since(at):
                        assert time.monotonic() < deadline, f"broker did not notice {me} leave"
                        time.sleep(0.01)
                    barrier()
                    readers = log.sent_to(at, topic) - {me}
                    for r in readers:
                        assert peers[r].wait_received(topic, will), f"{r} lost the will"
                    if readers:
                        seen[(template, role)] += "W"
            peers[me] = connect_peer(me)
    finally:
        for p in peers.values():
            p.close()
    return {k: ("".join(sorted(v, key="PSRW".index)) or "-") for k, v in seen.items()}


@pytest.fixture(scope="module")
def observed(tmp_path_factory) -> Iterator[dict[tuple[str, str], str]]:
    broker = make_broker(tmp_path_factory.mktemp("acl"), extra=["log_type debug"])
    try:
        broker.add_many([(principal(r), r) for r in ROLES]
                        + sorted(set(OTHERS.values())) + [(WITNESS, "edge")])
        _PORT[:] = [broker.port]
        yield observe(broker)
    finally:
        broker.process.stop()


def test_the_table_covers_every_role_and_topic_family():
    assert sorted(ROLES) == sorted(PROVISIONED), "docs/protocol.md 2.1: one column per role"
    families = {t.split("/", 1)[0] for t in MATRIX}
    assert families >= {"devices", "events", "edge", REQUEST_FAMILY, REPLY_FAMILY,
                        *COMMAND_FAMILIES}
    assert set(OTHERS) >= families - {"events", "edge"}
    assert {f"devices/{{self}}/{ch}" for ch in DEVICE_CHANNELS} <= set(MATRIX)


@pytest.mark.parametrize("role", ROLES)
def test_role_can_do_exactly_what_the_table_says(observed, role):
    wrong = {template: f"table {MATRIX[template][role]!r}, broker {observed[(template, role)]!r}"
             for template in MATRIX if observed[(template, role)] != MATRIX[template][role]}
    assert wrong == {}
