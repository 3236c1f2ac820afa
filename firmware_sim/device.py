"""One simulated in-store device: the kit's session plus the faults the fleet injects.

Everything a real device needs (buffer, back-pressure, birth/last will, reconnect
with backoff, TCP_NODELAY, MQTT 5 reason codes, commands, requests) is
:class:`contract.session.DeviceSession`. This module only adds what a real
device must never do and the simulator does on purpose, so that the edge's
deduplication, validation and quarantine are exercised:

* ``clock_skew_s``: the device clock is off by that much (``ts`` of its messages);
* ``duplicate_rate``: a message is sometimes sent twice with the very same bytes
  and ``msg_id``;
* :meth:`DeviceClient.inject_garbage`: invalid payloads on its own topics;
* :meth:`DeviceClient.drop_connection`: a TCP cut without DISCONNECT (the broker
  fires the will, the session buffers and reconnects).
"""

from __future__ import annotations

import json
import logging
import random
import socket
from dataclasses import dataclass
from typing import Any

from contract.kinds import DEVICE_KINDS
from contract.session import DeviceSession, SessionStats, TagReadLike
from contract.topics import KIND_CHANNELS
from contract.validation import MAX_PAYLOAD_BYTES

log = logging.getLogger("firmware_sim.device")

FW_VERSION = "sim-1.0.0"
GARBAGE_KINDS = ("not_json", "wrong_types", "missing_fields", "bad_uid", "unknown_field",
                 "oversize")
__all__ = ["DEVICE_KINDS", "GARBAGE_KINDS", "DeviceClient", "DeviceStats", "TagReadLike"]


@dataclass
class DeviceStats(SessionStats):
    """The session's counters plus the injected faults."""

    duplicates: int = 0
    garbage: int = 0
    drops: int = 0


class DeviceClient(DeviceSession):
    """A simulated device's session with fault hooks (see module docstring)."""

    stats_class = DeviceStats
    stats: DeviceStats

    def __init__(
        self,
        device_id: str,
        kind: str,
        password: str,
        *,
        store_id: str,
        host: str = "127.0.0.1",
        port: int = 1883,
        clock_skew_s: float = 0.0,
        duplicate_rate: float = 0.0,
        seed: int | str | None = None,
        fw: str = FW_VERSION,
        **session_options: Any,
    ) -> None:
        """``session_options`` are :class:`DeviceSession` keyword arguments (heartbeat_s,
        buffer_size, protocol, cafile, ...)."""
        super().__init__(host, port, store_id, device_id, password, kind=kind, fw=fw,
                         **session_options)
        self.clock_skew_s = clock_skew_s
        self.duplicate_rate = duplicate_rate
        self._rng = random.Random(seed)

    def now(self) -> float:
        """Device clock: wall time plus the simulated skew (never negative)."""
        return max(0.0, super().now() + self.clock_skew_s)

    def publish_json(self, channel: str, payload: dict[str, Any]) -> str:
        """As the session's, but a duplicate-send fault re-enqueues the very same bytes."""
        topic, raw, msg_id = self._stamp(channel, payload)
        self._send(topic, raw, msg_id)
        if self.duplicate_rate and self._rng.random() < self.duplicate_rate:
            self.stats.duplicates += 1
            self._send(topic, raw, msg_id)
        return msg_id

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
            raw = _json({"msg_id": 42, "ts": "yesterday", "uid": 4660})
        elif kind == "missing_fields":
            channel, raw = "qr", _json({"msg_id": mid})
        elif kind == "bad_uid":
            raw = _json({"msg_id": mid, "ts": ts, "uid": "zz-not-hex", "ndef": None})
        elif kind == "unknown_field":
            channel = "qr"
            raw = _json({"msg_id": mid, "ts": ts, "text": "]Q1x", "debug": {"heap": 1}})
        elif kind == "oversize":
            channel = "qr"
            filler = "A" * (MAX_PAYLOAD_BYTES["qr"] + 1024)
            raw = _json({"msg_id": mid, "ts": ts, "text": filler})
        else:
            raise ValueError(f"unknown garbage kind {kind!r}")
        channel = own_channel(self.kind, channel)  # the broker's ACL: its kind's channels
        self.stats.garbage += 1
        self._send(self.topic(channel), raw, mid)
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
        self._quiet_disconnect = True
        log.warning("%s: simulated network cut, offline for %.1fs", self.device_id, offline_s)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:  # already closing: the cut happened anyway
            log.warning("%s: shutdown during network cut: %s", self.device_id, exc)
        return True


def own_channel(kind: str, channel: str) -> str:
    """``channel`` if a device of ``kind`` may publish on it, else its first data channel."""
    allowed = KIND_CHANNELS.get(kind)
    if not allowed or channel in allowed:
        return channel
    return next((c for c in allowed if c not in ("state", "telemetry")), "telemetry")


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")
