"""A device's session with its store: the one MQTT client every in-store device is built on.

A :class:`DeviceSession` is one device identity on the store broker (client id ==
username == device id). A shelf reader uses it to publish readings; a kiosk, a
signage screen or a shelf label also receives typed commands
(:meth:`DeviceSession.on_command`) and, for a kiosk, asks the edge questions
(:meth:`DeviceSession.request`). It announces itself with a retained birth on
``devices/{id}/state`` (the same topic carries its retained last will), sends a
heartbeat, and publishes QoS 1 JSON messages stamped with ``msg_id`` and ``ts``.

Delivery design (why it is built this way):

* **One ordered buffer owns every unacknowledged message.** A message stays in
  the buffer until the broker's PUBACK; on reconnect everything that was in
  flight goes back to the front of the buffer and is resent in its original
  order with its ORIGINAL ``msg_id`` (the edge deduplicates on
  ``(device_id, msg_id)``, so a resend is always safe, and a new id would turn a
  retry into a double count). paho's own resend queue is emptied in
  ``on_connect`` (``Client.drop_out_messages``) so that there is exactly one
  owner of retries and the birth goes out first.
* **Bounded memory while offline.** The buffer holds at most ``buffer_size``
  messages; when the device is disconnected the oldest is dropped, counted in
  :attr:`SessionStats.dropped_oldest` and logged. A reader offline for hours
  should keep its latest taps, not crash.
* **Back-pressure while online.** At most ``max_inflight`` QoS 1 messages are
  handed to paho at once (released in ``on_publish``): paho refuses more than
  its outstanding limit with ``MQTT_ERR_QUEUE_SIZE`` and drops the message
  unless the return code is checked, so every ``publish`` rc is checked and a
  refused message goes back into the buffer. When the buffer is full and the
  device is connected, :meth:`DeviceSession.publish_json` blocks the caller
  (up to ``block_s``) instead of dropping: a burst slows the producer down.
* **Kept until committed.** A PUBACK only means the broker has the message,
  and Mosquitto saves its state every 10 s: a broker killed in between loses
  what it acknowledged. So an acknowledged device message moves to
  ``_awaiting`` and stays there until the edge names its ``msg_id`` in a commit
  notice (``committed/{device_id}``); after every reconnect whatever is still
  awaiting is resent, in order, with its original ``msg_id`` (the edge
  deduplicates). Awaiting messages count towards ``buffer_size``: when it is
  full the oldest awaiting one is forgotten first (``released_unconfirmed``: the
  only way a message can still be lost, a broker crash while the edge has been
  away longer than the buffer covers), before any unsent message is dropped.
* **MQTT 5 reason codes are read**, not assumed: a PUBACK ``0x10`` (no matching
  subscribers: nobody will get it) and ``0x87`` (not authorized) are counted and
  logged; a refused SUBSCRIBE is logged too.
* **Subscribers keep a persistent session** (kiosks, screens, labels: clean start
  off and a session expiry), so commands sent while they reboot are queued by the
  broker; publish-only readers do not need one (their buffer is the truth).
* **Latency.** The client is :class:`contract.mqtt_wire.VitrineClient`: TCP_NODELAY
  on the socket before CONNECT (Nagle plus delayed ACK cost 20-40 ms per QoS 1
  round trip) and buffered reads.

Callbacks (command handlers, replies) run on paho's network thread: keep a
command handler short, and never call :meth:`request` from inside one (it would
wait for a reply that the same thread has to receive; it raises instead).

Lock order (to stay deadlock-free with paho's internal mutexes): ``_hand_lock``
(held while calling paho ``publish``/``drop_out_messages``) before paho's
message mutex before ``_cond``. ``on_publish`` runs under paho's message mutex
and therefore only ever takes ``_cond``.

Fault injection (garbage, duplicates, clock skew, cut connections) is not here:
``firmware_sim.device.DeviceClient`` layers it on top of this class.
"""

from __future__ import annotations

import base64
import collections
import itertools
import json
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .commands import Command, CommandError, parse_command
from .kinds import ASKING_KINDS, READER_KINDS, check_kind, command_family
from .mqtt_wire import VitrineClient
from .requests import (
    REQUEST_OPS,
    Reply,
    RequestError,
    RequestTimeout,
    build_request,
    parse_reply,
)
from .topics import (
    command_topic,
    commit_topic,
    device_topic,
    edge_state_topic,
    reply_topic,
    request_topic,
    valid_id,
)

log = logging.getLogger("vitrine.device")

FW_VERSION = "kit-1.0.0"
#: Extra paho in-flight room for out-of-band messages (birth, clean offline).
_OOB_RESERVE = 8
#: MQTT versions a device can speak; the edge and Mosquitto take both.
PROTOCOLS = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}
#: How long the broker keeps a subscriber's session (and its queued commands) while away.
SESSION_EXPIRY_S = 7 * 24 * 3600
#: Bad commands kept for inspection (topic, payload head, error), newest last.
BAD_KEPT = 100
#: Command ids remembered to drop redeliveries (QoS 1 is at least once).
_SEEN_CMDS = 1024
_MQTT_NO_MATCHING_SUBSCRIBERS = 0x10


class TagReadLike(Protocol):
    """What :meth:`DeviceSession.tap` needs from a tag read (e.g. ``contract.nfc_tags.TagRead``)."""

    uid: str
    ndef: bytes | None
    tag_type: str


@dataclass
class SessionStats:
    """Counters a device, a test or a fleet can read; ``buffered`` lives on the session."""

    enqueued: int = 0
    acked: int = 0
    #: PUBACK with a failure reason code (MQTT v5), e.g. 0x87 not authorized.
    rejected: int = 0
    #: PUBACK 0x10: accepted, but no subscriber (no edge session yet): nobody gets it.
    no_subscribers: int = 0
    dropped_oldest: int = 0
    #: publish() return codes other than success / no-connection / queue-full.
    send_errors: int = 0
    connects: int = 0
    reconnects: int = 0
    #: CONNACKs refusing us (bad password, not authorized); paho keeps retrying.
    refused: int = 0
    #: Messages in flight at a disconnect and resent (same msg_id) after the reconnect.
    resent: int = 0
    #: Acknowledged by the broker, not yet confirmed by the edge, resent after a reconnect.
    resent_unconfirmed: int = 0
    #: Confirmed committed by the edge (commit notices).
    committed: int = 0
    #: Forgotten before the edge confirmed them, to make room (buffer full).
    released_unconfirmed: int = 0
    commands: int = 0
    bad_commands: int = 0
    duplicate_commands: int = 0
    handler_errors: int = 0
    replies: int = 0
    #: Replies for a request nobody waits for any more (it timed out), or unreadable.
    stray_replies: int = 0


@dataclass(slots=True)
class _Msg:
    seq: int
    topic: str
    payload: bytes
    msg_id: str
    retain: bool = False
    #: Counted messages occupy an in-flight slot and are resent after a reconnect;
    #: out-of-band ones (birth, offline) are regenerated instead.
    counted: bool = True
    properties: Properties | None = None


class _Waiter:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Reply | None = None


def _drop_paho_out_messages(client: mqtt.Client) -> None:
    """Empty paho's resend queue (called in on_connect, before paho resends it).

    ``Client.drop_out_messages()`` is public from paho 2.2; pyproject allows 2.1,
    where the same two lines have to reach into the client.
    """
    if hasattr(client, "drop_out_messages"):
        client.drop_out_messages()
        return
    with client._out_message_mutex:  # paho 2.1
        client._out_messages.clear()


class DeviceSession:
    """One device identity on the store broker (client id == username == device id)."""

    stats_class: type[SessionStats] = SessionStats

    def __init__(
        self,
        host: str,
        port: int,
        store_id: str,
        device_id: str,
        password: str,
        *,
        kind: str,
        tls: ssl.SSLContext | None = None,
        cafile: str | None = None,
        protocol: str = "5",
        buffer_size: int = 10_000,
        max_inflight: int = 100,
        block_s: float = 10.0,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        keepalive: int = 30,
        heartbeat_s: float = 30.0,
        fw: str = FW_VERSION,
        persistent: bool | None = None,
        session_expiry_s: int = SESSION_EXPIRY_S,
        await_commit: bool = True,
    ) -> None:
        """``protocol`` is the MQTT version, "5" or "3.1.1" (for brokers without MQTT 5,
        such as the demo's embedded one). ``tls`` (a ready context) or ``cafile`` (the
        store CA) turn on TLS. ``persistent`` defaults to True for kinds that receive
        commands (kiosk, signage, shelf_label) and False for readers."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
        if not valid_id(device_id):
            raise ValueError(f"invalid device id {device_id!r}")
        check_kind(kind)
        if buffer_size < 1 or max_inflight < 1:
            raise ValueError("buffer_size and max_inflight must be >= 1")
        self.device_id = device_id
        self.kind = kind
        self.store_id = store_id
        self.host, self.port = host, port
        self.protocol = protocol
        self.heartbeat_s = heartbeat_s
        self.buffer_size = buffer_size
        self.max_inflight = max_inflight
        self.block_s = block_s
        self.fw = fw
        self.persistent = kind not in READER_KINDS if persistent is None else persistent
        self.session_expiry_s = session_expiry_s
        self.stats = self.stats_class()
        #: Random per boot so that a restarted device never reuses a msg_id.
        self.boot_id = secrets.token_hex(4)
        self._counter = itertools.count(1)
        self._req_counter = itertools.count(1)
        self._seq = itertools.count(1)
        self._started_at = time.monotonic()
        self._reconnect_delays = (reconnect_min_s, reconnect_max_s)

        self._hand_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: collections.deque[_Msg] = collections.deque()
        self._inflight: dict[int, _Msg] = {}
        self._inflight_counted = 0
        #: Acknowledged by the broker, waiting for the edge's commit notice (by msg_id).
        self._awaiting: dict[str, _Msg] = {}
        self.await_commit = await_commit
        self._commit_topic = commit_topic(store_id, device_id) if await_commit else None
        self._device_prefix = device_topic(store_id, device_id, "state")[:-len("state")]
        self._early_acks: dict[int, Any] = {}
        self._limit = max_inflight
        #: True while the sender holds a popped batch not yet handed to paho.
        self._sender_busy = False
        self._connected = False
        self._closing = False
        #: Set by a subclass that cuts the connection on purpose (no warning logged).
        self._quiet_disconnect = False
        self._stopped = threading.Event()
        #: Set once the broker acknowledged this connection's subscriptions (commands,
        #: replies, commit notices): before that, what is sent to us may find no one.
        self.subscribed = threading.Event()
        self._threads: list[threading.Thread] = []

        family = command_family(kind)
        self._cmd_topic = command_topic(store_id, family, device_id) if family else None
        self._reply_topic = reply_topic(store_id, device_id) if kind in ASKING_KINDS else None
        self._edge_topic = edge_state_topic(store_id) if self.persistent else None
        self._handlers: list[Callable[[Command], None]] = []
        self._waiters: dict[str, list[_Waiter]] = {}
        self._seen_cmds: collections.OrderedDict[str, None] = collections.OrderedDict()
        #: (topic, payload head, error) of commands that could not be used.
        self.bad_commands: collections.deque[tuple[str, bytes, str]] = collections.deque(
            maxlen=BAD_KEPT)
        self._edge_online: bool | None = None
        self._in_callback = threading.local()

        kwargs: dict[str, Any] = {}
        if protocol == "3.1.1":
            kwargs["clean_session"] = not self.persistent
        c = VitrineClient(device_id, protocol=PROTOCOLS[protocol], **kwargs)
        c.username_pw_set(device_id, password)
        if tls is not None:
            c.tls_set_context(tls)
        elif cafile:
            c.tls_set(ca_certs=cafile)
        c.will_set(self.topic("state"), self._json({"state": "offline", "kind": kind}),
                   qos=1, retain=True)
        c.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        c.max_inflight_messages_set(max_inflight + _OOB_RESERVE)
        c.max_queued_messages_set(max_inflight + _OOB_RESERVE)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self._keepalive = keepalive
        self._client = c

    # -- lifecycle ------------------------------------------------------------
    def topic(self, channel: str) -> str:
        return device_topic(self.store_id, self.device_id, channel)

    def start(self, wait: float | None = None) -> bool:
        """Connect in the background (retrying forever); optionally wait for the first CONNACK.

        ``connect_async`` + ``loop_start`` makes even the first connection retry
        with backoff, so a device booting before the broker just waits for it.
        """
        if self.protocol == "5":
            props = None
            clean_start: Any = mqtt.MQTT_CLEAN_START_FIRST_ONLY
            if self.persistent:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.session_expiry_s
                clean_start = False
            self._client.connect_async(self.host, self.port, keepalive=self._keepalive,
                                       clean_start=clean_start, properties=props)
        else:
            self._client.connect_async(self.host, self.port, keepalive=self._keepalive)
        self._client.loop_start()
        for target, name in ((self._sender, "send"), (self._heartbeat, "hb")):
            t = threading.Thread(target=target, name=f"{self.device_id}-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self.wait_connected(wait) if wait is not None else self._connected

    def wait_connected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._connected, timeout)

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def edge_online(self) -> bool | None:
        """The edge's retained ``edge/state`` as last seen (subscribers only; None = unknown)."""
        return self._edge_online

    @property
    def buffered(self) -> int:
        """Messages not yet acknowledged by the broker (queued + in flight)."""
        with self._cond:
            return len(self._queue) + self._inflight_counted

    def close(self, flush_timeout: float = 5.0) -> bool:
        """Flush, publish a clean retained ``offline`` (a clean DISCONNECT suppresses the will)
        and stop every thread. Returns whether everything was acknowledged."""
        # Flush even when offline: a device in a short outage reconnects and drains.
        flushed = self.flush(flush_timeout)
        if self._connected:
            self._hand(self._oob_msg({"state": "offline", "kind": self.kind}))
            self.flush(2.0)
        self._closing = True
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        self._client.disconnect()
        self._client.loop_stop()
        for t in self._threads:
            t.join(5.0)
        return flushed

    @property
    def awaiting_commit(self) -> int:
        """Messages the broker acknowledged and the edge has not yet confirmed."""
        with self._cond:
            return len(self._awaiting)

    def wait_committed(self, timeout: float) -> bool:
        """Wait until everything published so far is confirmed committed by the edge."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and not self._inflight_counted and not self._inflight
                and not self._awaiting, timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until every message published so far is acknowledged by the broker."""
        with self._cond:
            # _inflight_counted also covers a message popped but not yet recorded.
            return self._cond.wait_for(
                lambda: not self._queue and not self._inflight_counted and not self._inflight,
                timeout)

    # -- publishing -----------------------------------------------------------
    def now(self) -> float:
        """Device clock (wall time); the simulator overrides it to inject skew."""
        return time.time()

    def next_msg_id(self) -> str:
        return f"{self.boot_id}-{next(self._counter)}"

    def publish_json(self, channel: str, payload: dict[str, Any]) -> str:
        """Stamp ``msg_id``/``ts`` onto a copy of ``payload``, buffer it, return the msg_id.

        Blocks while the buffer is full and the device is online (back-pressure);
        drops the oldest buffered message when offline.
        """
        topic, raw, msg_id = self._stamp(channel, payload)
        self._send(topic, raw, msg_id)
        return msg_id

    def tap(self, read: TagReadLike) -> str:
        """Publish an NFC tap (``devices/{id}/nfc``)."""
        ndef = base64.b64encode(read.ndef).decode("ascii") if read.ndef is not None else None
        payload: dict[str, Any] = {"uid": read.uid, "ndef": ndef}
        if read.tag_type:
            payload["tag_type"] = read.tag_type[:32]
        return self.publish_json("nfc", payload)

    def scan(self, text: str, symbology: str | None = None) -> str:
        """Publish a decoded QR/barcode (``devices/{id}/qr``), AIM prefix included in ``text``."""
        payload: dict[str, Any] = {"text": text}
        if symbology:
            payload["symbology"] = symbology
        return self.publish_json("qr", payload)

    def frame(self, image: bytes, fmt: str = "png") -> str:
        """Publish an encoded camera frame for edge-side decoding (``devices/{id}/frame``)."""
        return self.publish_json(
            "frame", {"format": fmt, "image": base64.b64encode(image).decode("ascii")})

    def heartbeat(self) -> str:
        return self.publish_json("telemetry", {
            "uptime_s": round(time.monotonic() - self._started_at, 3),
            "buffered": self.buffered,
            "reconnects": self.stats.reconnects,
        })

    # -- commands -------------------------------------------------------------
    def on_command(self, handler: Callable[[Command], None]) -> None:
        """Call ``handler`` with each typed command (``contract.commands``) for this device.

        Commands are validated against ``command.json`` first; a bad one is
        logged, counted (``stats.bad_commands``) and kept in :attr:`bad_commands`,
        never passed on. A repeat of a ``cmd_id`` (QoS 1 redelivery) is dropped.
        An exception in ``handler`` is logged with its traceback and counted;
        the session carries on.
        """
        if self._cmd_topic is None:
            raise ValueError(f"a {self.kind} receives no commands")
        first = not self._handlers
        self._handlers.append(handler)
        if first and self._connected:
            self._client.subscribe(self._cmd_topic, qos=1)

    # -- requests -------------------------------------------------------------
    def request(self, op: str, body: dict[str, Any], *, timeout: float = 5.0,
                request_id: str | None = None) -> dict[str, Any]:
        """Ask the edge; return the reply body (docs/protocol.md section 13).

        Raises :class:`~contract.requests.RequestError` for a structured error
        reply (or a request this device may not send), and
        :class:`~contract.requests.RequestTimeout` when no reply came in time.
        Retrying with the same ``request_id`` is safe: the edge answers a repeat
        with the reply it gave the first time, without doing the work again.
        """
        if getattr(self._in_callback, "active", False):
            raise RuntimeError("request() called from a session callback: it would wait "
                               "for a reply this very thread has to receive")
        spec = REQUEST_OPS.get(op)
        if spec is None:
            raise RequestError("unknown_op", f"unknown op {op!r}")
        if self._reply_topic is None or self.kind not in spec.kinds:
            raise RequestError("forbidden", f"a {self.kind} may not ask {op!r}")
        rid = request_id or f"{self.boot_id}-r{next(self._req_counter)}"
        envelope = build_request(op, body, rid, round(self.now(), 3))
        props = None
        if self.protocol == "5":
            # For MQTT 5 tooling; the edge relies on request_id and the fixed reply topic.
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = self._reply_topic
            props.CorrelationData = rid.encode()
        waiter = _Waiter()
        with self._cond:
            self._waiters.setdefault(rid, []).append(waiter)
        try:
            msg = _Msg(next(self._seq), request_topic(self.store_id, self.device_id),
                       self._json(envelope), rid, properties=props)
            if not self._hand_now(msg):
                self._enqueue(msg)
            if not waiter.done.wait(timeout):
                raise RequestTimeout(rid, timeout)
        finally:
            with self._cond:
                left = [w for w in self._waiters.get(rid, []) if w is not waiter]
                if left:
                    self._waiters[rid] = left
                else:
                    self._waiters.pop(rid, None)
        reply = waiter.reply
        assert reply is not None
        if not reply.ok:
            assert reply.error is not None
            raise reply.error
        try:
            return spec.check_reply(reply.body)
        except RequestError as exc:  # the edge broke the contract: say so, clearly
            raise RequestError("internal", f"edge reply does not match its schema: "
                                           f"{exc.message}"[:200]) from None

    # -- internals ------------------------------------------------------------
    @staticmethod
    def _json(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode("utf-8")

    def _stamp(self, channel: str, payload: dict[str, Any]) -> tuple[str, bytes, str]:
        if "msg_id" in payload or "ts" in payload:
            raise ValueError("msg_id and ts are stamped by the device, not the caller")
        msg_id = self.next_msg_id()
        body = {"msg_id": msg_id, "ts": round(self.now(), 3), **payload}
        return self.topic(channel), self._json(body), msg_id

    def _send(self, topic: str, raw: bytes, msg_id: str) -> None:
        """Buffer already-encoded bytes for ``topic`` (subclasses use it for faults)."""
        self._enqueue(_Msg(next(self._seq), topic, raw, msg_id))

    def _oob_msg(self, body: dict[str, Any]) -> _Msg:
        return _Msg(next(self._seq), self.topic("state"), self._json(body), "state",
                    retain=True, counted=False)

    def _enqueue(self, msg: _Msg) -> None:
        with self._cond:
            self.stats.enqueued += 1
            if len(self._queue) >= self.buffer_size and self._connected:
                self._cond.wait_for(
                    lambda: len(self._queue) < self.buffer_size or not self._connected,
                    self.block_s)
            while self._awaiting and len(self._queue) + len(self._awaiting) >= self.buffer_size:
                oldest = next(iter(self._awaiting))
                del self._awaiting[oldest]
                self.stats.released_unconfirmed += 1
                n = self.stats.released_unconfirmed
                if n in (1, 10, 100) or n % 1000 == 0:
                    log.warning("%s: buffer full (%d): forgot %s before the edge confirmed it"
                                " (%d so far)", self.device_id, self.buffer_size, oldest, n)
            while len(self._queue) >= self.buffer_size:
                old = self._queue.popleft()
                self.stats.dropped_oldest += 1
                n = self.stats.dropped_oldest
                if n in (1, 10, 100) or n % 1000 == 0:  # logged, but not 10,000 lines
                    log.warning("%s: buffer full (%d), dropped oldest %s (%d dropped so far)",
                                self.device_id, self.buffer_size, old.msg_id,
                                self.stats.dropped_oldest)
            self._queue.append(msg)
            self._cond.notify_all()

    def _sender(self) -> None:
        """Move buffered messages to paho while connected and slots are free.

        Messages move in batches (one lock round trip per batch, not per
        message): at burst rates the thread hand-off otherwise halves throughput.
        """
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopped.is_set()
                    or (self._connected and self._queue and self._inflight_counted < self._limit))
                if self._stopped.is_set():
                    return
                n = min(len(self._queue), self._limit - self._inflight_counted, 64)
                batch = [self._queue.popleft() for _ in range(n)]
                self._inflight_counted += n
                self._sender_busy = True
                self._cond.notify_all()  # room in the buffer for a blocked publisher
            refused = False
            for i, msg in enumerate(batch):
                if not self._hand(msg):
                    # paho refused (its queue is full): give the rest back, in order,
                    # and let acknowledgements drain before trying again.
                    rest = batch[i:]
                    with self._cond:
                        self._queue.extendleft(reversed(rest))
                        self._inflight_counted -= len(rest)
                        self._cond.notify_all()
                    refused = True
                    break
            with self._cond:
                self._sender_busy = False
            if refused:
                time.sleep(0.01)

    def _hand_now(self, msg: _Msg) -> bool:
        """Hand ``msg`` to paho from the caller's thread if nothing is ahead of it.

        A request waits for its reply, so the hop through the sender thread is
        pure latency (measured: +1.3 ms at p50, bench.request). Order is kept:
        holding ``_hand_lock``, the buffer is empty and the sender holds no
        popped batch, so nothing enqueued before ``msg`` can be published after
        it, and anything enqueued after it needs ``_hand_lock`` to go out.
        Returns False (the caller buffers it) when offline, busy or full.
        """
        with self._hand_lock:
            with self._cond:
                if (not self._connected or self._queue or self._sender_busy
                        or self._inflight_counted >= self._limit):
                    return False
                self._inflight_counted += 1
                self.stats.enqueued += 1
            if self._hand_locked(msg):
                return True
            with self._cond:  # refused by paho after all: back to the buffer, in order
                self._inflight_counted -= 1
                self.stats.enqueued -= 1
                self._cond.notify_all()
            return False

    def _hand(self, msg: _Msg) -> bool:
        """Publish one message through paho, checking its return code.

        Returns False only when paho refused it (MQTT_ERR_QUEUE_SIZE): the message
        was not taken and the caller must keep it.
        """
        with self._hand_lock:
            return self._hand_locked(msg)

    def _hand_locked(self, msg: _Msg) -> bool:
        """``_hand`` with ``_hand_lock`` already held by the caller."""
        info = self._client.publish(msg.topic, msg.payload, qos=1, retain=msg.retain,
                                    properties=msg.properties)
        with self._cond:
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                # NO_CONN: paho keeps it; on_connect takes it back into our buffer.
                reason = self._early_acks.pop(info.mid, None)
                if reason is None:
                    self._inflight[info.mid] = msg
                else:
                    self._complete(msg, reason)
                return True
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                # Refused, not lost: the sender puts counted messages back in order.
                if not msg.counted:
                    log.warning("%s: paho queue full, %s not sent", self.device_id, msg.topic)
                return False
            if msg.counted:
                self._inflight_counted -= 1
            self.stats.send_errors += 1
            log.warning("%s: publish %s failed rc=%s (%s), message dropped", self.device_id,
                        msg.msg_id, info.rc, mqtt.error_string(info.rc))
            self._cond.notify_all()
            return True

    def _complete(self, msg: _Msg, reason: Any) -> None:
        """Called with ``_cond`` held once the broker acknowledged ``msg``."""
        if msg.counted:
            self._inflight_counted -= 1
        if getattr(reason, "is_failure", False):
            self.stats.rejected += 1
            log.warning("%s: broker rejected %s on %s: %s", self.device_id, msg.msg_id,
                        msg.topic, reason)
        elif msg.counted:
            self.stats.acked += 1
            if self.await_commit and msg.topic.startswith(self._device_prefix):
                self._awaiting[msg.msg_id] = msg
            if getattr(reason, "value", 0) == _MQTT_NO_MATCHING_SUBSCRIBERS:
                self.stats.no_subscribers += 1
                n = self.stats.no_subscribers
                if n in (1, 10, 100) or n % 1000 == 0:
                    log.warning("%s: %s accepted but nobody subscribes to %s (edge never "
                                "connected?); %d such so far", self.device_id, msg.msg_id,
                                msg.topic, n)
        self._cond.notify_all()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        with self._cond:
            msg = self._inflight.pop(mid, None)
            if msg is None:  # acked before _hand recorded it
                self._early_acks[mid] = reason_code
                return
            self._complete(msg, reason_code)

    def _subscriptions(self) -> list[tuple[str, int]]:
        subs = []
        if self._cmd_topic and self._handlers:
            subs.append((self._cmd_topic, 1))
        if self._reply_topic:
            subs.append((self._reply_topic, 1))
        if self._edge_topic:
            subs.append((self._edge_topic, 1))
        if self._commit_topic:
            subs.append((self._commit_topic, 1))
        return subs

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            self.stats.refused += 1
            log.warning("%s: connection refused by broker: %s", self.device_id, reason_code)
            return
        client.reconnect_delay_set(*self._reconnect_delays)
        receive_max = getattr(properties, "ReceiveMaximum", None)
        subs = self._subscriptions()
        self.subscribed.clear()
        if not subs:
            self.subscribed.set()
        if subs:
            # Before the birth and any resend: a request resent below is then
            # answered on a reply topic we already listen to (the broker handles
            # one client's packets in order).
            client.subscribe(subs)
        with self._hand_lock:
            # Take back what paho would resend: our buffer is the only resend path.
            _drop_paho_out_messages(client)
            with self._cond:
                resend = sorted((m for m in self._inflight.values() if m.counted),
                                key=lambda m: m.seq)
                self.stats.resent += len(resend)
                # Messages popped by the sender but not yet handed stay counted.
                self._inflight_counted -= len(resend)
                # Acknowledged by the broker but never confirmed by the edge: the broker
                # may have lost them (a crash between snapshots). Resend; the edge dedupes.
                unconfirmed = list(self._awaiting.values())
                self._awaiting.clear()
                self.stats.resent_unconfirmed += len(unconfirmed)
                resend = sorted(resend + unconfirmed, key=lambda m: m.seq)
                self._queue.extendleft(reversed(resend))
                self._inflight.clear()
                self._early_acks.clear()
                self._limit = self.max_inflight
                if receive_max:
                    self._limit = max(1, min(self.max_inflight, receive_max - _OOB_RESERVE))
                self.stats.connects += 1
                if self.stats.connects > 1:
                    self.stats.reconnects += 1
                    log.info("%s: reconnected (%d), resending %d in-flight, %d buffered",
                             self.device_id, self.stats.reconnects, len(resend), len(self._queue))
            birth = {"state": "online", "kind": self.kind, "fw": self.fw,
                     "heartbeat_s": self.heartbeat_s, "ts": round(self.now(), 3)}
        self._hand(self._oob_msg(birth))
        with self._cond:
            self._connected = True
            self._cond.notify_all()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: list[Any], properties: Any) -> None:
        for rc in reason_codes:
            if getattr(rc, "is_failure", False):
                log.warning("%s: broker refused a subscription: %s (check its ACL role)",
                            self.device_id, rc)
        self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        with self._cond:
            was_connected, self._connected = self._connected, False
            self._cond.notify_all()
        if self._quiet_disconnect:  # a cut made on purpose, already logged
            self._quiet_disconnect = False
        elif not self._closing and was_connected:
            log.warning("%s: connection lost (%s); buffering until reconnect",
                        self.device_id, reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._in_callback.active = True
        try:
            if msg.topic == self._reply_topic:
                self._on_reply(msg.payload)
            elif msg.topic == self._cmd_topic:
                self._on_command_message(msg.topic, msg.payload)
            elif msg.topic == self._edge_topic:
                self._on_edge_state(msg.payload)
            elif msg.topic == self._commit_topic:
                self._on_commit_notice(msg.payload)
        finally:
            self._in_callback.active = False

    def _on_commit_notice(self, payload: bytes) -> None:
        """The edge committed these of our messages: forget them (docs/protocol.md 1.5.1)."""
        try:
            ids = json.loads(payload)["committed"]
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable commit notice ignored", self.device_id)
            return
        with self._cond:
            for msg_id in ids if isinstance(ids, list) else ():
                if isinstance(msg_id, str) and self._awaiting.pop(msg_id, None) is not None:
                    self.stats.committed += 1
            self._cond.notify_all()

    def _on_reply(self, payload: bytes) -> None:
        try:
            reply = parse_reply(payload)
        except RequestError as exc:
            self.stats.stray_replies += 1
            log.warning("%s: unreadable reply: %s", self.device_id, exc.message)
            return
        with self._cond:
            waiters = self._waiters.pop(reply.request_id, [])
        if not waiters:
            self.stats.stray_replies += 1
            log.info("%s: reply to %s came after its caller gave up", self.device_id,
                     reply.request_id)
            return
        self.stats.replies += 1
        for w in waiters:
            w.reply = reply
            w.done.set()

    def _on_command_message(self, topic: str, payload: bytes) -> None:
        try:
            cmd = parse_command(payload)
        except CommandError as exc:
            self.stats.bad_commands += 1
            self.bad_commands.append((topic, bytes(payload[:512]), str(exc)))
            log.warning("%s: bad command ignored: %s", self.device_id, exc)
            return
        if cmd.cmd_id in self._seen_cmds:
            self.stats.duplicate_commands += 1
            return
        self._seen_cmds[cmd.cmd_id] = None
        if len(self._seen_cmds) > _SEEN_CMDS:
            self._seen_cmds.popitem(last=False)
        self.stats.commands += 1
        for handler in self._handlers:
            try:
                handler(cmd)
            except Exception:
                self.stats.handler_errors += 1
                log.exception("%s: command handler failed on %s", self.device_id, cmd.cmd)

    def _on_edge_state(self, payload: bytes) -> None:
        try:
            state = json.loads(payload).get("state")
        except (ValueError, AttributeError):
            log.warning("%s: unreadable edge state %r", self.device_id, payload[:100])
            return
        self._edge_online = state == "online"

    def _heartbeat(self) -> None:
        # Heartbeats are liveness, not data: while offline they are skipped rather
        # than buffered, since a stale heartbeat replayed later says nothing.
        while not self._stopped.wait(self.heartbeat_s):
            if self._connected:
                self.heartbeat()
