"""The MQTT client every Vitrine part uses: paho 2, tuned for QoS 1 on a LAN.

Measured on these machines (Mosquitto 2.0.11, paho 2.2), two costs dominate:

1. **Latency: Nagle + delayed ACK.** A QoS 1 round trip costs 20-40 ms unless
   *both* the broker (``set_tcp_nodelay true``) and the client socket set
   TCP_NODELAY. paho has no option for it, so :class:`VitrineClient` sets it on
   the socket it creates, before CONNECT is sent.
2. **Throughput: one syscall per byte of header.** paho reads each packet with
   ``recv(1)`` for the fixed header, ``recv(1)`` per remaining-length byte and
   one ``recv`` for the body, and a subscriber handles at most one packet per
   ``select()`` wake-up. :class:`BufferedSocket` reads up to 256 KiB per syscall
   and reports what it holds through ``pending()`` (the hook paho already uses
   for TLS), and :meth:`VitrineClient.loop_read` handles every buffered packet
   before going back to ``select()``.

3. **Throughput: one syscall per packet written.** Acknowledging a batch of
   1,000 messages made 1,000 ``send()`` calls. While paho writes its queue
   (``_packet_write``) the socket is *corked*: packets are gathered and sent
   with one ``sendall`` at the end.

4. **CPU per received message.** For every PUBLISH paho builds a
   ``MQTTMessage``, decodes the topic for a debug line, walks its topic matcher
   (even with no ``message_callback_add``) and takes two locks. A receiver that
   sets :attr:`VitrineClient.on_publish_received` gets QoS 0/1 publishes of an
   MQTT 3.1.1 session as plain values instead, parsed here in a few slices
   (the edge: ~1/4 of its network thread; ``docs/benchmarks.md``). Every other
   packet, QoS 2 and MQTT 5 take paho's own path.

This relies on ``Client._create_socket``, ``Client._packet_write`` and
``Client._handle_publish``, private paho methods: paho is pinned ``<3`` and
``tests/contract/test_mqtt_wire.py`` fails if the hooks disappear.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

READ_CHUNK = 256 * 1024
_PUBACK = struct.Struct("!BBH")
#: Packets handled per loop_read call at most, so that writes (acks) interleave.
MAX_PACKETS_PER_READ = 2000
#: ``on_publish_received(mid, qos, topic, payload, retain)``: see VitrineClient.
RawPublishHandler = Callable[[int, int, str, bytes, bool], None]


class BufferedSocket:
    """A socket wrapper that serves small ``recv()`` calls from one large read."""

    __slots__ = ("_sock", "_buf", "_pos", "_corked")

    def __init__(self, sock: Any):
        self._sock = sock
        self._buf = b""
        self._pos = 0
        self._corked: list[bytes] | None = None

    def send(self, data: bytes | bytearray | memoryview) -> int:
        if self._corked is not None:
            self._corked.append(bytes(data))
            return len(data)
        return self._sock.send(data)

    def cork(self) -> None:
        self._corked = []

    def uncork(self) -> None:
        """Send what was gathered in one go.

        The socket is non-blocking; if the kernel buffer is full, wait for room
        (bounded) rather than keep bytes paho believes sent. The broker reads
        continuously, so on a LAN this wait is rare and short.
        """
        chunks, self._corked = self._corked, None
        if not chunks:
            return
        data = memoryview(b"".join(chunks))
        while data:
            try:
                sent = self._sock.send(data)
                data = data[sent:]
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                select.select([], [self._sock], [], 1.0)

    def recv(self, bufsize: int) -> bytes:
        if self._pos >= len(self._buf):
            data = self._sock.recv(max(bufsize, READ_CHUNK))
            if len(data) <= bufsize:
                return data  # includes b"" (connection closed)
            self._buf, self._pos = data, 0
        start = self._pos
        self._pos = min(start + bufsize, len(self._buf))
        return self._buf[start:self._pos]

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) - self._pos + inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def set_nodelay(sock: Any) -> None:
    raw = sock._sock if isinstance(sock, BufferedSocket) else sock
    if hasattr(raw, "setsockopt"):
        with contextlib.suppress(OSError):  # unix sockets: no Nagle to disable
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class VitrineClient(mqtt.Client):
    """paho ``Client`` with TCP_NODELAY and buffered reads (see module docstring)."""

    def __init__(self, client_id: str = "", *, protocol: int = mqtt.MQTTv5,
                 manual_ack: bool = False, **kwargs: Any):
        super().__init__(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                         manual_ack=manual_ack, **kwargs)
        #: When set, QoS 0/1 publishes of an MQTT 3.1.1 session go here as plain values
        #: (message id, QoS, topic, payload, retain flag) instead of ``on_message``. The
        #: acknowledgement is the same as for ``on_message``: paho's after the call, or
        #: the receiver's (``ack_many``) with ``manual_ack``.
        self.on_publish_received: RawPublishHandler | None = None

    def _handle_publish(self) -> mqtt.MQTTErrorCode:  # paho private, see module docstring
        handler = self.on_publish_received
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if handler is None or qos == 2 or self._protocol == mqtt.MQTTv5:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        size = len(packet)
        tlen = (packet[0] << 8 | packet[1]) if size >= 2 else 0
        start = 2 + tlen + (2 if qos else 0)
        if tlen == 0 or start > size:
            return super()._handle_publish()  # malformed: paho raises as it should
        try:
            topic = packet[2:2 + tlen].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()  # paho's way of reporting it
        mid = (packet[start - 2] << 8 | packet[start - 1]) if qos else 0
        with self._in_callback_mutex:
            try:
                handler(mid, qos, topic, bytes(packet[start:]), bool(header & 0x01))
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_publish_received:"
                               " %s", err)
                if not self.suppress_exceptions:
                    raise
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _create_socket(self) -> Any:  # paho private hook, see module docstring
        sock = super()._create_socket()
        set_nodelay(sock)
        if self._transport == "websockets":
            return sock
        return BufferedSocket(sock)

    def _packet_write(self) -> mqtt.MQTTErrorCode:  # paho private, see module docstring
        sock = self._sock
        if not isinstance(sock, BufferedSocket):
            return super()._packet_write()
        sock.cork()
        try:
            return super()._packet_write()
        finally:
            # Connection lost mid-write: paho notices on its next read or write
            # and reconnects; QoS 1 state (resend, redelivery) makes it harmless.
            with contextlib.suppress(OSError):
                sock.uncork()

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge many QoS 1 messages (``manual_ack=True``) as one queued write.

        ``Client.ack`` queues one PUBACK and wakes the network thread with a
        syscall per message; a committed batch of 1,000 messages is acknowledged
        here with one queue operation. PUBACK with no reason code means success
        in MQTT 5 as in 3.1.1.
        """
        if mids:
            packet = b"".join(_PUBACK.pack(0x40, 2, mid) for mid in mids)
            self._packet_queue(0x40, packet, 0, 0)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        n = 1
        sock = self._sock
        while (rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and sock is not None
               and isinstance(sock, BufferedSocket) and sock.pending() > 0
               and n < MAX_PACKETS_PER_READ):
            rc = super().loop_read(1)
            sock = self._sock
            n += 1
        return rc
