"""Embedded pure-Python store broker (amqtt) for ``vitrine demo`` without Mosquitto.

``python -m vitrine.embedded_broker DATA_DIR PORT`` serves MQTT 3.1.1 on
127.0.0.1:PORT. :func:`vitrine.broker.start_broker` runs it when the
``mosquitto`` binary is missing, so that the demo works on a laptop with
nothing but ``pip install 'vitrine[embedded-broker]'``. It is **not** a
production broker: production is Mosquitto with ``vitrine broker config``.

What it shares with the production broker, so that the demo exercises the same
security model:

* **Authentication against the same files.** Users and their Mosquitto ``$7$``
  hashes (PBKDF2-HMAC-SHA512) come from ``DATA_DIR/passwd``, written by
  :mod:`vitrine.provisioning`; no anonymous access. Hashes are compared in
  constant time, and an unknown user costs the same PBKDF2 as a known one.
* **The same ACL.** ``DATA_DIR/acl`` (Mosquitto syntax, as
  :func:`vitrine.provisioning.render_acl` writes it: ``user``, ``topic``,
  ``pattern`` with ``%u``/``%c``) is parsed and enforced on PUBLISH, SUBSCRIBE
  and delivery: a device writes only ``vitrine/v1/{store}/devices/{username}/#``.
  Two places are stricter than Mosquitto 2.0.11, which grants any SUBSCRIBE
  and filters each delivery, and accepts a CONNECT whose last will the client
  may not write but drops the will when it fires: here a SUBSCRIBE that a read
  rule does not cover whole is refused (SUBACK 0x80), and so is such a
  CONNECT (amqtt would publish the will unchecked). A client also gets
  retained messages only for its own subscriptions (amqtt alone hands every
  new client those of everybody's: see :class:`VitrineBroker`).
* **Reload on SIGHUP**, like Mosquitto: ``vitrine device add`` and
  :meth:`vitrine.broker.BrokerProcess.reload` work unchanged; the pid is in
  ``DATA_DIR/mosquitto.pid``. A revoked user is refused at its next CONNECT
  and, while still connected, may neither publish nor receive anything.
* **Persistent sessions** for ``clean_session=False`` clients (the edge):
  subscriptions survive a disconnect, QoS 1 messages published meanwhile are
  queued and delivered at the reconnect, and so are the messages that were in
  flight to it, unacknowledged, when it went away (amqtt alone would forget
  those: see :class:`_VitrineHandler`). Sessions unused for 14 days expire.

What amqtt 0.12.1 cannot do (read in its source, checked by
``tests/broker/test_embedded_broker.py`` where testable), each a reason to use
Mosquitto in a store:

* **MQTT 3.1.1 only.** MQTT 5 clients are refused with CONNACK "unsupported
  protocol version" (amqtt alone would leave them hanging: see
  :class:`VitrineBroker`): the demo runs its devices with ``protocol="3.1.1"``.
* **No persistence.** Sessions, queued and retained messages live in memory and
  are lost when this process stops, cleanly or not (Mosquitto snapshots them).
* **A 5 s PUBACK deadline.** A QoS 1 message a connected subscriber has not
  acknowledged within 5 s (hard-coded) is dropped, logged as a failed task.
  The edge acknowledges after its commit, normally within milliseconds; an
  edge stalled for longer loses messages here, not with Mosquitto.
* **No limits.** No ``max_queued_messages``/``max_queued_bytes`` (an offline
  session's queue grows without bound), no ``max_inflight_messages`` (every
  queued message is sent at once), no ``max_packet_size``.
* **Queued messages arrive with the retain flag set**, and QoS is the
  subscription's. The edge does not depend on either.
* **No TLS listener** here (``BrokerSettings.tls_port`` is ignored): the demo
  runs on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import amqtt.broker as amqtt_broker
from amqtt.adapters import (
    ReaderAdapter,
    StreamReaderAdapter,
    StreamWriterAdapter,
    WriterAdapter,
)
from amqtt.broker import Broker, BrokerContext, RetainedApplicationMessage
from amqtt.contexts import Action, BaseContext, BrokerConfig, ListenerConfig, ListenerType
from amqtt.errors import MQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.constants import QOS_1
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.plugins.manager import PluginManager
from amqtt.session import OutgoingApplicationMessage, Session

log = logging.getLogger("vitrine.embedded_broker")

#: Forget persistent sessions unused for this long (Mosquitto: persistent_client_expiration 14d).
SESSION_EXPIRY_S = 14 * 24 * 3600
#: Seconds a new connection has to send the start of its CONNECT.
CONNECT_TIMEOUT_S = 10.0
#: What the start log line says, so nobody mistakes the demo broker for production.
LIMITS = ("MQTT 3.1.1 only; sessions, queues and retained messages in memory (lost at exit);"
          " a QoS 1 message not acknowledged within 5 s by a connected subscriber is dropped;"
          " no queue, in-flight or packet size limits; no TLS listener")
_ACCESS = ("read", "write", "readwrite", "deny")
#: Dummy hash checked for unknown users, so their rejection takes as long as a wrong password.
_DUMMY_SALT = b"vitrine-dummy"


# -- passwords ------------------------------------------------------------------
def verify_password(password: str, encoded: str) -> bool:
    """Check ``password`` against a Mosquitto ``$7$<iterations>$<b64 salt>$<b64 hash>`` entry.

    Only ``$7$`` (PBKDF2-HMAC-SHA512, Mosquitto 2.x) is accepted: it is all
    :func:`vitrine.provisioning.hash_password` writes. A malformed entry never
    matches. The final comparison is constant-time.
    """
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error):
        return False
    # A full SHA-512 output only: a truncated hash in the file would be easier to brute-force.
    if not 0 < iterations <= 10_000_000 or len(expected) != hashlib.sha512().digest_size:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)


# -- ACL --------------------------------------------------------------------------
def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching of a concrete ``topic`` against a filter with ``+``/``#``."""
    f, t = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True  # "a/#" also matches "a" (MQTT 4.7.1.2)
        if i >= len(t) or level not in ("+", t[i]):
            return False
    return len(f) == len(t)


def filter_covers(rule: str, topic_filter: str) -> bool:
    """Whether every topic matched by ``topic_filter`` is matched by ``rule`` too.

    A subscription is allowed only when a read rule covers it whole: amqtt sends
    retained messages to a new subscription without asking the ACL, so a
    filter reaching beyond what the client may read must be refused outright.
    """
    r, f = rule.split("/"), topic_filter.split("/")
    for i, level in enumerate(r):
        if level == "#":
            return True
        if i >= len(f) or f[i] == "#":
            return False
        if level != "+" and f[i] != level:  # a literal covers only itself, not "+"
            return False
    return len(r) == len(f)


@dataclass(frozen=True, slots=True)
class AclRule:
    """One ``topic``/``pattern`` line of a Mosquitto ACL file."""

    access: str
    topic: str

    def applies(self, access: str) -> bool:
        """Does this rule grant ``access`` ("read" or "write")?"""
        return self.access in (access, "readwrite")


@dataclass
class Acl:
    """A parsed Mosquitto ACL: per-user ``topic`` rules and everyone's ``pattern`` rules.

    Semantics follow Mosquitto 2.0's ``acl_file``: nothing is allowed unless a
    rule allows it, ``deny`` rules win, ``topic`` lines before any ``user``
    line are for anonymous clients only (never allowed here), and ``%u``/``%c``
    in patterns stand for the username and client id, which then must not
    contain ``/``, ``+`` or ``#``. Subscriptions are checked whole
    (:func:`filter_covers`), which Mosquitto does not do.
    """

    users: dict[str, list[AclRule]] = field(default_factory=dict)
    patterns: list[AclRule] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Acl:
        acl = cls()
        user: str | None = None
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keyword, _, rest = line.partition(" ")
            rest = rest.strip()
            if keyword == "user":
                user = rest
                acl.users.setdefault(user, [])
                continue
            if keyword not in ("topic", "pattern") or not rest:
                log.warning("acl line %d ignored: %r", n, raw)
                continue
            access, _, topic = rest.partition(" ")
            if access not in _ACCESS or not topic.strip():
                access, topic = "readwrite", rest
            rule = AclRule(access, topic.strip())
            if keyword == "pattern":
                acl.patterns.append(rule)
            elif user is not None:
                acl.users[user].append(rule)
        return acl

    def _rules(self, username: str, client_id: str) -> list[AclRule]:
        rules = list(self.users.get(username, []))
        if not any(c in value for value in (username, client_id) for c in "/+#"):
            rules += [AclRule(r.access, r.topic.replace("%u", username).replace("%c", client_id))
                      for r in self.patterns]
        return rules

    def allows(self, username: str, client_id: str, topic: str, access: str) -> bool:
        """May ``username`` publish (``write``) to / receive (``read``) from ``topic``?"""
        rules = self._rules(username, client_id)
        if any(r.access == "deny" and topic_matches(r.topic, topic) for r in rules):
            return False
        return any(r.applies(access) and topic_matches(r.topic, topic) for r in rules)

    def allows_subscribe(self, username: str, client_id: str, topic_filter: str) -> bool:
        rules = self._rules(username, client_id)
        return any(r.applies("read") and filter_covers(r.topic, topic_filter) for r in rules)


class AccessControl:
    """Users and ACL of one broker data directory, re-read by :meth:`load` (on SIGHUP)."""

    def __init__(self, data_dir: Path):
        self.password_file = data_dir / "passwd"
        self.acl_file = data_dir / "acl"
        self.users: dict[str, str] = {}
        self.acl = Acl()

    def load(self) -> None:
        """Read both files; on an unreadable file keep nothing (refuse all), as Mosquitto does."""
        users: dict[str, str] = {}
        try:
            lines = self.password_file.read_text("utf-8").splitlines()
            acl = Acl.parse(self.acl_file.read_text("utf-8"))
        except OSError as exc:
            log.error("cannot read %s or %s: %s; refusing every client until the next reload",
                      self.password_file, self.acl_file, exc)
            self.users, self.acl = {}, Acl()
            return
        for n, line in enumerate(lines, 1):
            name, sep, encoded = line.strip().partition(":")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not sep or not encoded.startswith("$7$"):
                log.warning("%s line %d: not a user:$7$ entry, ignored", self.password_file, n)
                continue
            users[name] = encoded
        self.users, self.acl = users, acl
        log.info("loaded %d user(s) from %s and the ACL from %s", len(users),
                 self.password_file, self.acl_file)

    def authenticate(self, username: str, password: str) -> bool:
        encoded = self.users.get(username)
        if encoded is None:
            # Same PBKDF2 cost as a real check, so timing does not reveal who exists.
            hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), _DUMMY_SALT, 101)
            return False
        return verify_password(password, encoded)

    def allows(self, username: str, client_id: str, topic: str, access: str) -> bool:
        # A user revoked since it connected loses every right at the reload.
        return username in self.users and self.acl.allows(username, client_id, topic, access)

    def allows_subscribe(self, username: str, client_id: str, topic_filter: str) -> bool:
        return (username in self.users
                and self.acl.allows_subscribe(username, client_id, topic_filter))


# -- amqtt plugin -------------------------------------------------------------------
class VitrineAccessPlugin(BaseAuthPlugin, BaseTopicPlugin):
    """amqtt auth + topic plugin enforcing ``DATA_DIR/passwd`` and ``DATA_DIR/acl``.

    One plugin for both hooks so that authentication and ACL always come from
    the same snapshot of the files.
    """

    @dataclass
    class Config:
        data_dir: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        if not self.config.data_dir:
            raise ValueError("VitrineAccessPlugin needs data_dir")
        self.access = AccessControl(Path(self.config.data_dir))
        self.access.load()

    def reload(self) -> None:
        self.access.load()

    async def authenticate(self, *, session: Session) -> bool | None:
        who = f"{session.client_id!r} (u{session.username!r}) from {session.remote_address}"
        if not session.username:
            log.warning("refused %s: no username (anonymous access is off)", who)
            return False
        if not self.access.authenticate(session.username, session.password or ""):
            log.warning("refused %s: bad username or password", who)
            return False
        if session.will_flag and session.will_topic and not self.access.allows(
                session.username, session.client_id or "", session.will_topic, "write"):
            log.warning("refused %s: last will on %r is not allowed by the ACL", who,
                        session.will_topic)
            return False
        return True

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool | None:
        if session is None or not session.username or not topic:
            return False
        user, cid = session.username, session.client_id or ""
        if action == Action.PUBLISH:
            ok = self.access.allows(user, cid, topic, "write")
        elif action == Action.RECEIVE:
            ok = self.access.allows(user, cid, topic, "read")
        elif action == Action.SUBSCRIBE:
            ok = self.access.allows_subscribe(user, cid, topic)
        else:
            return False
        if not ok and action != Action.RECEIVE:
            log.warning("denied %s by %r (u%r) on %r", action.upper(), cid, user, topic)
        return ok

    async def on_broker_client_connected(self, *, client_id: str, client_session: Session) -> None:
        log.info("client %r (u%r) connected from %s, clean session %s", client_id,
                 client_session.username, client_session.remote_address,
                 client_session.clean_session)

    async def on_broker_client_disconnected(self, *, client_id: str,
                                            client_session: Session) -> None:
        queued = client_session.retained_messages.qsize()
        log.info("client %r disconnected%s", client_id,
                 f" ({queued} message(s) queued for it)" if queued else "")


class _VitrineHandler(BrokerProtocolHandler):
    """amqtt's per-connection handler with the fixes the store's guarantees depend on.

    * **Authenticate first.** amqtt 0.12.1 deletes a client id's stored session
      (clean session) or takes over its live connection *before* it asks the
      auth plugins, so a client with a wrong password could wipe the edge's
      persistent session and its queued messages, or kick the edge off, just by
      reusing its client id. Here a CONNECT that fails authentication is
      answered "not authorized" and dropped before any of that. (The broker
      asks the plugins again afterwards: redundant, harmless.)
    * **Keep in-flight messages.** amqtt forgets a QoS 1 message sent to a
      subscriber once the connection ends, PUBACK or not, and keeps routing new
      messages to the dying connection until it is closed, where they are lost
      too. The edge acknowledges only after its commit, so an edge crash would
      lose what it had received but not committed. Here, when a persistent
      session's connection stops, its unacknowledged QoS 1 messages, then
      whatever is routed to it while it stops, go to the session's offline
      queue, in that order, and are delivered at the reconnect (at least once:
      a message acknowledged at the very moment of the cut can come twice, as
      with Mosquitto; the edge deduplicates).
    """

    #: Set when the connection starts stopping; from then on messages are queued, not sent.
    _stopping = False

    @classmethod
    async def init_from_connect(cls, reader: ReaderAdapter, writer: WriterAdapter,
                                plugins_manager: PluginManager[BrokerContext],
                                loop: asyncio.AbstractEventLoop | None = None,
                                ) -> tuple[BrokerProtocolHandler, Session]:
        handler, session = await super().init_from_connect(reader, writer, plugins_manager, loop)
        results = await plugins_manager.map_plugin_auth(session=session)
        if not results or not all(results.values()):
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"client {session.client_id!r} not authorized")
        return handler, session

    def _keeps_messages(self) -> bool:
        return self.session is not None and self.session.clean_session is False

    def _queue(self, topic: str, data: bytes | bytearray, qos: int | None) -> None:
        assert self.session is not None
        self.session.retained_messages.put_nowait(
            RetainedApplicationMessage(None, topic, data, qos))

    async def mqtt_publish(self, topic: str, data: bytes | bytearray, qos: int | None,
                           retain: bool, ack_timeout: int | None = None,
                           ) -> OutgoingApplicationMessage:
        # The session turns "disconnected" only once stop() returns; until then the
        # broker keeps routing here, and amqtt would write to a closed socket.
        if self._stopping and qos == QOS_1 and self._keeps_messages():
            self._queue(topic, data, qos)
            return OutgoingApplicationMessage(None, topic, qos, data, retain)
        return await super().mqtt_publish(topic, data, qos, retain, ack_timeout)

    async def stop(self) -> None:
        # stop() runs more than once for one connection (take-over, then disconnect).
        if not self._stopping and self._keeps_messages():
            assert self.session is not None
            unacked = [m for m in self.session.inflight_out.values()
                       if m.qos == QOS_1 and m.puback_packet is None]
            # Queued before anything routed here while stopping, so the order holds.
            for m in unacked:
                self._queue(m.topic, m.data, m.qos)
            if unacked:
                log.info("client %r: %d unacknowledged QoS 1 message(s) kept for its"
                         " reconnect", self.session.client_id, len(unacked))
        self._stopping = True
        await super().stop()


class _PrefixedReader(StreamReaderAdapter):
    """amqtt's stream reader, first serving bytes already read off the stream."""

    def __init__(self, prefix: bytes, reader: asyncio.StreamReader) -> None:
        super().__init__(reader)
        self._prefix = prefix

    async def read(self, n: int = -1) -> bytes:
        if not self._prefix:
            return await super().read(n)
        if n == -1:
            data, self._prefix = self._prefix + await super().read(-1), b""
            return data
        head, self._prefix = self._prefix[:n], self._prefix[n:]
        if len(head) < n:
            head += await super().read(n - len(head))
        return head


async def _read_connect_head(reader: asyncio.StreamReader) -> tuple[bytes, int]:
    """Read a CONNECT up to its protocol level; return the bytes read and the level."""
    head = bytearray(await reader.readexactly(1))
    if head[0] != 0x10:
        raise ValueError("first packet is not a CONNECT")
    for _ in range(4):  # remaining length: 1 to 4 bytes
        head += await reader.readexactly(1)
        if not head[-1] & 0x80:
            break
    name_len = await reader.readexactly(2)
    if int.from_bytes(name_len, "big") > 6:  # "MQTT" (3.1.1, 5) or "MQIsdp" (3.1)
        raise ValueError("bad protocol name")
    head += name_len + await reader.readexactly(int.from_bytes(name_len, "big"))
    head += await reader.readexactly(1)
    return bytes(head), head[-1]


class VitrineBroker(Broker):
    """amqtt's :class:`~amqtt.broker.Broker` with :class:`_VitrineHandler`, a clear "no" to
    MQTT 5, and retained messages only for a client's own subscriptions.

    amqtt misreads an MQTT 5 CONNECT (its properties) and then waits forever
    for bytes that never come: the client hangs with no answer. Here the
    protocol level is read first, and anything but 3.1.1 gets a CONNACK
    "unsupported protocol version" in its own protocol's format, which paho
    reports as such. A connection that sends no CONNECT within
    :data:`CONNECT_TIMEOUT_S` (``start_broker``'s port probe, a stuck client)
    is closed without amqtt ever seeing it.

    amqtt names its handler class as a module global of ``amqtt.broker``; it is
    replaced for the whole process, which is this dedicated broker process.
    """

    def __init__(self, config: BrokerConfig) -> None:
        amqtt_broker.BrokerProtocolHandler = _VitrineHandler
        super().__init__(config)

    async def stream_connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                               listener_name: str) -> None:
        peer = writer.get_extra_info("peername")
        try:
            head, level = await asyncio.wait_for(_read_connect_head(reader), CONNECT_TIMEOUT_S)
        except (TimeoutError, asyncio.IncompleteReadError, ValueError, OSError):
            writer.close()
            return
        if level != 4:
            log.warning("refused a client from %s: MQTT protocol level %d, this broker speaks"
                        " 3.1.1 (level 4) only", peer[0] if peer else "?", level)
            # MQTT 5: reason 0x84 and an empty property list; 3.1: return code 1.
            writer.write(b"\x20\x03\x00\x84\x00" if level == 5 else b"\x20\x02\x00\x01")
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            return
        await self._client_connected(listener_name, _PrefixedReader(head, reader),
                                     StreamWriterAdapter(writer))

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                          session: Session) -> None:
        # amqtt 0.12.1 calls this at every CONNECT for every topic filter *any* client
        # subscribed to, handing a new client the retained messages of others'
        # subscriptions past the ACL (a device would get every device's birth). Only a
        # filter this session subscribed to, and the ACL checked at SUBSCRIBE, count.
        topic_filter = subscription[0]
        subscribers = self._subscriptions.get(topic_filter, [])
        if any(s.client_id == session.client_id for s, _ in subscribers):
            await super()._publish_retained_messages_for_subscription(subscription, session)


# -- process ------------------------------------------------------------------------
def broker_config(data_dir: Path, port: int, bind: str = "127.0.0.1") -> BrokerConfig:
    """amqtt configuration: one TCP listener, our access plugin, no anonymous, no $SYS."""
    return BrokerConfig(
        listeners={"default": ListenerConfig(type=ListenerType.TCP, bind=f"{bind}:{port}")},
        session_expiry_interval=SESSION_EXPIRY_S,
        # __name__, not the dotted path: run with -m this module is __main__, and the
        # plugin must be this very class (serve() finds it with isinstance).
        plugins={f"{__name__}.VitrineAccessPlugin": {"data_dir": str(data_dir)}},
    )


async def serve(data_dir: Path, port: int, bind: str = "127.0.0.1") -> None:
    """Run the broker until SIGTERM or SIGINT; SIGHUP re-reads ``passwd`` and ``acl``."""
    broker = VitrineBroker(broker_config(data_dir, port, bind))
    plugin = next(p for p in broker.plugins_manager.plugins
                  if isinstance(p, VitrineAccessPlugin))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # Handlers first: start_broker's caller may SIGHUP (reload) as soon as the port is open,
    # and SIGHUP's default action would kill the process.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, plugin.reload)
    # Where `vitrine device` looks for the broker to SIGHUP; written whole before the port
    # opens, like the log line, since start_broker takes an open port to mean "ready".
    pid_file = data_dir / "mosquitto.pid"
    tmp = pid_file.with_suffix(".pid.tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(pid_file)
    log.warning("EMBEDDED broker (amqtt, pure Python) serving %s:%d, auth and ACL from %s."
                " Demo only, install mosquitto for a store. Limits: %s.", bind, port, data_dir,
                LIMITS)
    try:
        await broker.start()
        await stop.wait()
        log.info("stopping: %d session(s) and their queued messages are dropped",
                 len(broker.sessions))
        await asyncio.wait_for(broker.shutdown(), 10)
    finally:
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
    log.info("embedded broker stopped")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vitrine.embedded_broker",
                                description="Demo-only MQTT 3.1.1 broker (amqtt).")
    p.add_argument("data_dir", type=Path, help="broker directory with passwd and acl")
    p.add_argument("port", type=int)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("-v", "--verbose", action="store_true", help="amqtt's own INFO logs too")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%S")
    # Connects, disconnects, refusals and denials, like Mosquitto's connection_messages.
    log.setLevel(logging.INFO)
    amqtt_log = logging.getLogger("amqtt")
    amqtt_log.setLevel(logging.INFO if args.verbose else logging.ERROR)
    asyncio.run(serve(args.data_dir, args.port, args.bind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
