"""Thousands of simulated shelf labels on one thread: each its own MQTT identity.

A store has thousands of e-paper labels. :class:`firmware_sim.shelf_label.SimLabel` run
through the device kit (``contract.session.DeviceSession``) costs three threads per
label (paho's network loop, the sender, the heartbeat): 5,000 labels were 15,000
threads, and a shared 2-core machine spent its time switching between them instead of
measuring the edge (docs/benchmarks.md). The swarm keeps what makes a label a label on
the wire and drops only the threads:

* **each label is its own client**: its own TCP connection, its own username and
  password (so the broker's ACL applies to each, exactly as to a real label: it may
  read only ``label/{id}/cmd`` and write only under ``devices/{id}/``), its own
  persistent session (``clean_session = false``, commands queued while it is away),
  its retained birth and last will on ``devices/{id}/state``;
* each runs the same firmware logic (:class:`SimLabel`: decompress, recompute the hash,
  keep, report what it displays) and reports QoS 1 on ``devices/{id}/label`` with a
  ``msg_id`` unique per boot, the kit's form;
* all of a swarm's sockets are driven by **one thread** with paho's external-loop API
  (``loop_read`` / ``loop_write`` / ``loop_misc`` around a ``selectors`` poll), the way
  an ESL access point serves many labels from one radio.

What it leaves out of the kit, and why that does not flatter the edge: no offline
buffer beyond paho's in-flight window (a label's only message is its report, sent
right after a bitmap, while connected) and no commit-notice bookkeeping (a report lost
to a broker crash is re-sent on reconnection, the label's last report being kept); no
telemetry heartbeat (a label sleeps; the benchmark does not measure staleness).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import threading
import time
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.commands import CommandError, parse_command
from contract.topics import command_topic, device_topic

from .shelf_label import SimLabel

log = logging.getLogger("vitrine.sim.label_swarm")


class _Label:
    """One label: its MQTT client and its firmware."""

    def __init__(self, swarm: LabelSwarm, device_id: str, password: str) -> None:
        self.swarm = swarm
        self.device_id = device_id
        self.boot = os.urandom(4).hex()
        self.counter = 0
        self.last_report: tuple[str, bytes] | None = None
        self.connected = False
        self.seen_cmds: set[str] = set()
        self.firmware = SimLabel(device_id, self.report)
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id,
                        protocol=mqtt.MQTTv311, clean_session=False)
        c.username_pw_set(device_id, password)
        c.max_inflight_messages_set(20)
        state = device_topic(swarm.store_id, device_id, "state")
        c.will_set(state, json.dumps({"state": "offline", "kind": "shelf_label"}), qos=1,
                   retain=True)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        self.client = c
        self.state_topic = state
        self.cmd_topic = command_topic(swarm.store_id, "label", device_id)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.warning("%s: connection refused: %s", self.device_id, rc)
            return
        self.connected = True
        client.publish(self.state_topic, json.dumps(
            {"state": "online", "kind": "shelf_label", "fw": "swarm-1.0", "heartbeat_s": 3600,
             "ts": round(time.time(), 3)}), qos=1, retain=True)
        client.subscribe(self.cmd_topic, qos=1)
        if self.last_report is not None:  # maybe lost with the connection: say it again
            client.publish(*self.last_report, qos=1)

    def _on_disconnect(self, *_a: Any) -> None:
        self.connected = False

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            cmd = parse_command(msg.payload)
        except CommandError as exc:
            self.swarm.bad_commands += 1
            log.warning("%s: bad command ignored: %s", self.device_id, exc)
            return
        if cmd.cmd_id in self.seen_cmds:  # a QoS 1 redelivery
            return
        self.seen_cmds.add(cmd.cmd_id)
        self.firmware.on_command(cmd)

    def report(self, channel: str, payload: dict[str, Any]) -> str:
        self.counter += 1
        msg_id = f"{self.boot}-{self.counter}"
        body = json.dumps({"msg_id": msg_id, "ts": round(time.time(), 3), **payload},
                          separators=(",", ":")).encode()
        self.last_report = (device_topic(self.swarm.store_id, self.device_id, channel), body)
        self.client.publish(*self.last_report, qos=1)
        self.swarm.reports += 1
        return msg_id


class LabelSwarm:
    """``labels`` (device id, password) connected to ``host:port``, driven by one thread."""

    def __init__(self, host: str, port: int, store_id: str,
                 labels: Iterable[tuple[str, str]], *, keepalive: int = 60) -> None:
        self.host = host
        self.port = port
        self.store_id = store_id
        self.keepalive = keepalive
        self.reports = 0
        self.bad_commands = 0
        self.labels = [_Label(self, d, pw) for d, pw in labels]
        self._by_fd: dict[int, _Label] = {}
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> int:
        return sum(1 for label in self.labels if label.connected)

    def shown(self) -> dict[str, str | None]:
        return {label.device_id: label.firmware.shown_hash for label in self.labels}

    def _register(self, label: _Label) -> None:
        sock = label.client.socket()
        if sock is not None and sock.fileno() not in self._by_fd:
            self._by_fd[sock.fileno()] = label
            self._sel.register(sock, selectors.EVENT_READ, label)

    def _unregister(self, fd: int) -> None:
        label = self._by_fd.pop(fd, None)
        if label is not None:
            with contextlib.suppress(KeyError, ValueError):  # already gone with its socket
                self._sel.unregister(fd)

    def start(self) -> LabelSwarm:
        self._thread = threading.Thread(target=self._run, name="label-swarm", daemon=True)
        self._thread.start()
        return self

    def _connect(self, label: _Label) -> bool:
        try:
            label.client.connect(self.host, self.port, keepalive=self.keepalive)
        except OSError as exc:
            log.warning("%s: cannot connect (%s); retrying", label.device_id, exc)
            return False
        self._register(label)
        return True

    def _run(self) -> None:
        pending = list(self.labels)  # to connect, a couple of hundred per turn of the loop
        last_misc = 0.0
        while not self._stop.is_set():
            batch, pending = pending[:200], pending[200:]
            pending += [label for label in batch if not self._connect(label)]
            for key, _ in self._sel.select(timeout=0.05):
                label = key.data
                if label.client.loop_read(100) != mqtt.MQTT_ERR_SUCCESS:
                    self._unregister(key.fd)
                    pending.append(label)
            for label in self.labels:
                if label.client.want_write():
                    label.client.loop_write()
            now = time.monotonic()
            if now - last_misc >= 1.0:
                last_misc = now
                for fd, label in list(self._by_fd.items()):
                    if label.client.loop_misc() != mqtt.MQTT_ERR_SUCCESS:
                        self._unregister(fd)
                        pending.append(label)

    def stop(self) -> None:
        """Clean offline for every label (retained state, then DISCONNECT)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for label in self.labels:
            if label.connected:
                label.client.publish(label.state_topic, json.dumps(
                    {"state": "offline", "kind": "shelf_label"}), qos=1, retain=True)
                label.client.disconnect()
                for _ in range(3):
                    if label.client.loop_write() != mqtt.MQTT_ERR_SUCCESS:
                        break
        self._sel.close()
