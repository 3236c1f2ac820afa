"""One simulated in-store device: a single MQTT identity that never silently loses a message.

A :class:`DeviceClient` is what a shelf NFC reader, a QR scanner or a dumb camera
runs: it logs in with its own credentials (client id == username == device id),
announces itself with a retained birth on ``devices/{id}/state`` (the same topic
carries its retained last will), sends a heartbeat, and publishes QoS 1 JSON
messages stamped with ``msg_id`` and ``ts``.

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
  :attr:`DeviceStats.dropped_oldest` and logged. A reader offline for hours
  should keep its latest taps, not crash.
* **Back-pressure while online.** At most ``max_inflight`` QoS 1 messages are
  handed to paho at once (released in ``on_publish``): paho refuses more than
  its outstanding limit with ``MQTT_ERR_QUEUE_SIZE`` and drops the message
  unless the return code is checked, so every ``publish`` rc is checked and a
  refused message goes back into the buffer. When the buffer is full and the
  device is connected, :meth:`DeviceClient.publish_json` blocks the caller
  (up to ``block_s``) instead of dropping: a burst slows the producer down.
* **Kept until committed.** A PUBACK only means the broker has the message,
  and Mosquitto saves its state every 10 s: a broker killed in between loses
  what it acknowledged. So an acknowledged message moves to ``_awaiting`` and
  stays there until the edge names its ``msg_id`` in a commit notice
  (``committed/{device_id}``); after every reconnect whatever is still awaiting
  is resent, in order, with its original ``msg_id`` (the edge deduplicates).
  Awaiting messages count towards ``buffer_size``: when it is full the oldest
  awaiting one is released first (``released_unconfirmed``: the only way a
  message can still be lost, with a broker crash while the edge is away longer
  than the buffer covers), before any unsent message is dropped.
* **Latency.** TCP_NODELAY is set on the socket in ``on_connect``: without it
  Nagle plus delayed ACK cost 20-40 ms per QoS 1 round trip.

Fault hooks used by the fleet simulator: ``clock_skew_s``, ``duplicate_rate``,
:meth:`DeviceClient.inject_garbage` and :meth:`DeviceClient.drop_connection`.

Lock order (to stay deadlock-free with paho's internal mutexes): ``_hand_lock``
(held while calling paho ``publish``/``drop_out_messages``) before paho's
message mutex before ``_cond``. ``on_publish`` runs under paho's message mutex
and therefore only ever takes ``_cond``.
"""

from __future__ import annotations

import base64
import collections
import itertools
import json
import logging
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from contract.mqtt_wire import set_nodelay
from contract.topics import KIND_CHANNELS, commit_topic, device_topic, valid_id
from contract.validation import MAX_PAYLOAD_BYTES

log = logging.getLogger("firmware_sim.device")

FW_VERSION = "sim-1.0.0"
DEVICE_KINDS = ("nfc_reader", "qr_scanner", "camera", "kiosk", "signage")
#: Extra paho in-flight room for out-of-band messages (birth, clean offline).
_OOB_RESERVE = 8
#: MQTT versions a device can speak; the edge and Mosquitto take both.
_PROTOCOLS = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}
GARBAGE_KINDS = ("not_json", "wrong_types", "missing_fields", "bad_uid", "unknown_field",
                 "oversize")


class TagReadLike(Protocol):
    """What :meth:`DeviceClient.tap` needs from ``firmware_sim.nfc_reader.TagRead``."""

    uid: str
    ndef: bytes | None
    tag_type: str


@dataclass
class DeviceStats:
    """Counters a test or the fleet can read; ``buffered`` lives on the client."""

    enqueued: int = 0
    acked: int = 0
    #: PUBACK with a failure reason code (MQTT v5), e.g. 0x87 not authorized.
    rejected: int = 0
    dropped_oldest: int = 0
    #: publish() return codes other than success / no-connection / queue-full.
    send_errors: int = 0
    duplicates: int = 0
    garbage: int = 0
    connects: int = 0
    reconnects: int = 0
    drops: int = 0
    #: Messages in flight at a disconnect and resent (same msg_id) after the reconnect.
    resent: int = 0
    #: Acknowledged by the broker, not yet confirmed by the edge, resent after a reconnect.
    resent_unconfirmed: int = 0
    #: Confirmed committed by the edge (commit notices).
    committed: int = 0
    #: Forgotten before the edge confirmed them, to make room (buffer full).
    released_unconfirmed: int = 0


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


def own_channel(kind: str, channel: str) -> str:
    """``channel`` if a device of ``kind`` may publish on it, else its first data channel."""
    allowed = KIND_CHANNELS.get(kind)
    if not allowed or channel in allowed:
        return channel
    return next((c for c in allowed if c not in ("state", "telemetry")), "telemetry")


class DeviceClient:
    """A simulated device's MQTT session with buffering, back-pressure and fault hooks."""

    def __init__(
        self,
        device_id: str,
        kind: str,
        password: str,
        *,
        store_id: str,
        host: str = "127.0.0.1",
        port: int = 1883,
        heartbeat_s: float = 30.0,
        buffer_size: int = 10_000,
        max_inflight: int = 100,
        block_s: float = 10.0,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        keepalive: int = 30,
        clock_skew_s: float = 0.0,
        duplicate_rate: float = 0.0,
        seed: int | str | None = None,
        cafile: str | None = None,
        fw: str = FW_VERSION,
        protocol: str = "5",
        await_commit: bool = True,
    ) -> None:
        """``protocol`` is the MQTT version, "5" or "3.1.1" (for brokers without MQTT 5,
        such as the demo's embedded one); a 3.1.1 session is clean, like the 5 one."""
        if protocol not in _PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(_PROTOCOLS)}, not {protocol!r}")
        if not valid_id(device_id):
            raise ValueError(f"invalid device id {device_id!r}")
        if kind not in DEVICE_KINDS:
            raise ValueError(f"unknown device kind {kind!r}")
        if buffer_size < 1 or max_inflight < 1:
            raise ValueError("buffer_size and max_inflight must be >= 1")
        self.device_id = device_id
        self.kind = kind
        self.store_id = store_id
        self.host, self.port = host, port
        self.heartbeat_s = heartbeat_s
        self.buffer_size = buffer_size
        self.max_inflight = max_inflight
        self.block_s = block_s
        self.clock_skew_s = clock_skew_s
        self.duplicate_rate = duplicate_rate
        self.fw = fw
        self.stats = DeviceStats()
        #: Random per boot so that a restarted device never reuses a msg_id.
        self.boot_id = secrets.token_hex(4)
        self._counter = itertools.count(1)
        self._seq = itertools.count(1)
        self._rng = random.Random(seed)
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
        self._early_acks: dict[int, Any] = {}
        self._limit = max_inflight
        self._connected = False
        self._closing = False
        self._cut = False
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id,
                        protocol=_PROTOCOLS[protocol])
        c.username_pw_set(device_id, password)
        if cafile:
            c.tls_set(ca_certs=cafile)
        c.will_set(self.topic("state"), self._json({"state": "offline", "kind": kind}),
                   qos=1, retain=True)
        c.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        c.max_inflight_messages_set(max_inflight + _OOB_RESERVE)
        c.max_queued_messages_set(max_inflight + _OOB_RESERVE)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.message_callback_add(commit_topic(store_id, device_id), self._on_commit_notice)
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
        """Device clock: wall time plus the simulated skew (never negative)."""
        return max(0.0, time.time() + self.clock_skew_s)

    def next_msg_id(self) -> str:
        return f"{self.boot_id}-{next(self._counter)}"

    def publish_json(self, channel: str, payload: dict[str, Any]) -> str:
        """Stamp ``msg_id``/``ts`` onto a copy of ``payload``, buffer it, return the msg_id.

        Blocks while the buffer is full and the device is online (back-pressure);
        drops the oldest buffered message when offline. Duplicate-send faults
        re-enqueue the very same bytes and msg_id.
        """
        if "msg_id" in payload or "ts" in payload:
            raise ValueError("msg_id and ts are stamped by the device, not the caller")
        msg_id = self.next_msg_id()
        body = {"msg_id": msg_id, "ts": round(self.now(), 3), **payload}
        msg = _Msg(next(self._seq), self.topic(channel), self._json(body), msg_id)
        self._enqueue(msg)
        if self.duplicate_rate and self._rng.random() < self.duplicate_rate:
            self.stats.duplicates += 1
            self._enqueue(_Msg(next(self._seq), msg.topic, msg.payload, msg_id))
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

    # -- faults ---------------------------------------------------------------
    def inject_garbage(self, kind: str | None = None) -> str:
        """Publish an invalid payload to one of this device's own topics; return its kind.

        It goes through the device's own credentials and ACL, exactly like a
        buggy firmware would, so the edge's validation and quarantine see it.
        """
        kind = kind or self._rng.choice(GARBAGE_KINDS)
        mid, ts = self.next_msg_id(), round(self.now(), 3)
        channel, raw = "nfc", b""
        if kind == "not_json":
            raw = b"\xff\xfe{tap: 04A1B2" + bytes([0, 1, 2])
        elif kind == "wrong_types":
            raw = self._json({"msg_id": 42, "ts": "yesterday", "uid": 4660})
        elif kind == "missing_fields":
            channel, raw = "qr", self._json({"msg_id": mid})
        elif kind == "bad_uid":
            raw = self._json({"msg_id": mid, "ts": ts, "uid": "zz-not-hex", "ndef": None})
        elif kind == "unknown_field":
            channel = "qr"
            raw = self._json({"msg_id": mid, "ts": ts, "text": "]Q1x", "debug": {"heap": 1}})
        elif kind == "oversize":
            channel = "qr"
            filler = "A" * (MAX_PAYLOAD_BYTES["qr"] + 1024)
            raw = self._json({"msg_id": mid, "ts": ts, "text": filler})
        else:
            raise ValueError(f"unknown garbage kind {kind!r}")
        channel = own_channel(self.kind, channel)
        self.stats.garbage += 1
        self._enqueue(_Msg(next(self._seq), self.topic(channel), raw, mid))
        return kind

    def drop_connection(self, offline_s: float = 2.0) -> bool:
        """Cut the TCP connection without an MQTT DISCONNECT, so the broker fires the will.

        The reconnect delay is stretched to ``offline_s`` for this one outage
        (restored on the next CONNACK); meanwhile publishes are buffered.
        Returns False if there was no connection to cut.
        """
        sock = self._client.socket()
        if sock is None or not self._connected:
            return False
        self._client.reconnect_delay_set(offline_s, max(offline_s, self._reconnect_delays[1]))
        self.stats.drops += 1
        self._cut = True
        log.warning("%s: simulated network cut, offline for %.1fs", self.device_id, offline_s)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:  # already closing: the cut happened anyway
            log.warning("%s: shutdown during network cut: %s", self.device_id, exc)
        return True

    # -- internals ------------------------------------------------------------
    @staticmethod
    def _json(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode("utf-8")

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
                self._cond.notify_all()  # room in the buffer for a blocked publisher
            for i, msg in enumerate(batch):
                if not self._hand(msg):
                    # paho refused (its queue is full): give the rest back, in order,
                    # and let acknowledgements drain before trying again.
                    rest = batch[i:]
                    with self._cond:
                        self._queue.extendleft(reversed(rest))
                        self._inflight_counted -= len(rest)
                        self._cond.notify_all()
                    time.sleep(0.01)
                    break

    def _hand(self, msg: _Msg) -> bool:
        """Publish one message through paho, checking its return code.

        Returns False only when paho refused it (MQTT_ERR_QUEUE_SIZE): the message
        was not taken and the caller must keep it.
        """
        with self._hand_lock:
            info = self._client.publish(msg.topic, msg.payload, qos=1, retain=msg.retain)
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
            if self.await_commit:
                self._awaiting[msg.msg_id] = msg
        self._cond.notify_all()

    def _on_commit_notice(self, client: mqtt.Client, userdata: Any,
                          message: mqtt.MQTTMessage) -> None:
        try:
            ids = json.loads(message.payload)["committed"]
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable commit notice ignored", self.device_id)
            return
        with self._cond:
            for msg_id in ids if isinstance(ids, list) else ():
                if self._awaiting.pop(msg_id, None) is not None:
                    self.stats.committed += 1
            self._cond.notify_all()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        with self._cond:
            msg = self._inflight.pop(mid, None)
            if msg is None:  # acked before _hand recorded it
                self._early_acks[mid] = reason_code
                return
            self._complete(msg, reason_code)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("%s: connection refused by broker: %s", self.device_id, reason_code)
            return
        sock = client.socket()
        if sock is not None:
            set_nodelay(sock)
        client.reconnect_delay_set(*self._reconnect_delays)
        receive_max = getattr(properties, "ReceiveMaximum", None)
        with self._hand_lock:
            # Take back what paho would resend: our buffer is the only resend path.
            _drop_paho_out_messages(client)
            with self._cond:
                resend = sorted((m for m in self._inflight.values() if m.counted),
                                key=lambda m: m.seq)
                self.stats.resent += len(resend)
                # Acknowledged by the broker but never confirmed by the edge: the broker
                # may have lost them (a crash between snapshots). Resend; the edge dedupes.
                unconfirmed = list(self._awaiting.values())
                self._awaiting.clear()
                self.stats.resent_unconfirmed += len(unconfirmed)
                resend = sorted(resend + unconfirmed, key=lambda m: m.seq)
                self._queue.extendleft(reversed(resend))
                self._inflight.clear()
                self._early_acks.clear()
                # Messages popped by the sender but not yet handed stay counted.
                self._inflight_counted -= len(resend) - len(unconfirmed)
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
        if self.await_commit:
            client.subscribe(commit_topic(self.store_id, self.device_id), qos=1)
        self._hand(self._oob_msg(birth))
        with self._cond:
            self._connected = True
            self._cond.notify_all()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        with self._cond:
            was_connected, self._connected = self._connected, False
            self._cond.notify_all()
        if self._cut:  # our own simulated cut, already logged
            self._cut = False
        elif not self._closing and was_connected:
            log.warning("%s: connection lost (%s); buffering until reconnect",
                        self.device_id, reason_code)

    def _heartbeat(self) -> None:
        # Heartbeats are liveness, not data: while offline they are skipped rather
        # than buffered, since a stale heartbeat replayed later says nothing.
        while not self._stopped.wait(self.heartbeat_s):
            if self._connected:
                self.heartbeat()
