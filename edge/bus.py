"""The edge's MQTT connection: persistent session, manual acks, birth and will.

Two properties matter and are easy to lose with paho's defaults:

* **Ack after commit.** The client runs with ``manual_ack=True``: a QoS 1
  message is acknowledged by :meth:`EdgeBus.ack` only once the pipeline has
  committed it. If the edge dies before that, the broker still holds the
  message in our persistent session and redelivers it on reconnect.
* **Latency and throughput** come from :class:`contract.mqtt_wire.VitrineClient`
  (TCP_NODELAY on our socket, buffered reads); see that module.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract.mqtt_wire import VitrineClient
from contract.topics import (
    command_topic,
    device_subscription,
    edge_state_topic,
    event_topic,
    requests_subscription,
)

from .config import EdgeConfig
from .inbound import Inbound

log = logging.getLogger("vitrine.edge.bus")
SESSION_EXPIRY_S = 14 * 24 * 3600
#: Events per published message at most (~300 KiB), far below max_packet_size.
PUBLISH_CHUNK = 500


class EdgeBus:
    def __init__(self, cfg: EdgeConfig, on_message: Callable[[Inbound], None],
                 version: str = "0.1.0"):
        self.cfg = cfg
        self._on_inbound = on_message
        self.connected = threading.Event()
        self.version = version
        if cfg.mqtt_protocol == "3.1.1":
            # No MQTT 5 properties to decode on every message: measurably cheaper.
            # The broker's max_inflight_messages then plays Receive Maximum's role.
            c = VitrineClient(cfg.mqtt_client_id, protocol=mqtt.MQTTv311, manual_ack=True,
                              clean_session=False)
        elif cfg.mqtt_protocol == "5":
            c = VitrineClient(cfg.mqtt_client_id, manual_ack=True)
        else:
            raise ValueError(f"mqtt_protocol must be '5' or '3.1.1', not {cfg.mqtt_protocol!r}")
        c.username_pw_set(cfg.mqtt_username, cfg.mqtt_password or None)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(0.2, 5)
        self._state_topic = edge_state_topic(cfg.store_id)
        c.will_set(self._state_topic, json.dumps({"state": "offline"}), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self._sub_mid: int | None = None
        self.client = c

    # -- lifecycle ---------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        if self.cfg.mqtt_protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = self.cfg.receive_maximum
            self.client.connect(self.cfg.mqtt_host, self.cfg.mqtt_port, keepalive=30,
                                clean_start=False, properties=props)
        else:
            self.client.connect(self.cfg.mqtt_host, self.cfg.mqtt_port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(timeout):
            raise TimeoutError(f"edge could not connect to MQTT at {self.cfg.mqtt_host}:"
                               f"{self.cfg.mqtt_port}")

    def stop(self) -> None:
        if self.connected.is_set():
            info = self.client.publish(self._state_topic, json.dumps({"state": "offline"}),
                                       qos=1, retain=True)
            info.wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    # -- callbacks ---------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if getattr(reason_code, "is_failure", bool(reason_code)):
            log.error("MQTT connection refused: %s", reason_code)
            return
        _rc, self._sub_mid = client.subscribe([(device_subscription(self.cfg.store_id), 1),
                                               (requests_subscription(self.cfg.store_id), 1)])
        client.publish(self._state_topic,
                       json.dumps({"state": "online", "fw": self.version,
                                   "ts": time.time()}), qos=1, retain=True)
        log.info("edge connected to %s:%d (session present: %s)", self.cfg.mqtt_host,
                 self.cfg.mqtt_port, getattr(flags, "session_present", "?"))

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:
        # "Connected" means subscribed: on a first start (no persistent session yet)
        # a device or kiosk publishing right after start() would otherwise find no
        # subscriber (PUBACK 0x10) and its message would go nowhere.
        if mid != self._sub_mid:
            return
        refused = [rc for rc in reason_codes if getattr(rc, "is_failure", False)]
        if refused:
            log.error("broker refused the edge's subscriptions: %s (check the ACL)", refused)
            return
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self.connected.clear()
        if reason_code.value != 0:
            log.warning("edge lost MQTT connection (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._on_inbound(Inbound(msg.mid, msg.qos, msg.topic, msg.payload, time.time(),
                                 bool(msg.retain)))

    # -- outbound ----------------------------------------------------------------
    def ack_batch(self, items: list[Inbound]) -> None:
        """Acknowledge a committed batch to the broker (QoS 1 messages only)."""
        self.client.ack_many([it.mid for it in items if it.qos == 1])

    def publish_command(self, family: str, device_id: str, command: dict[str, Any],
                        retain: bool = False) -> None:
        """Send a command (QoS 1; the device keeps a persistent session).

        ``retain`` only for state a device must find on (re)connection even when
        the edge is down: a screen's playlists (docs/protocol.md section 14).
        """
        self.client.publish(command_topic(self.cfg.store_id, family, device_id),
                            json.dumps(command, separators=(",", ":"), ensure_ascii=False),
                            qos=1, retain=retain)

    def publish_reply(self, topic: str, payload: bytes) -> None:
        """Answer a device's request (QoS 1), called only after the commit that made it."""
        self.client.publish(topic, payload, qos=1)

    def publish_events(self, kind: str, payloads: list[str]) -> None:
        """Publish derived events in store (QoS 1), called only after their commit.

        One MQTT message carries a JSON array of the batch's events of one kind:
        at 10k events/s, a QoS 1 publish (and its PUBACK) per event would cost
        more CPU than the whole pipeline. When the store is quiet a batch is one
        event, so latency does not suffer.
        """
        topic = event_topic(self.cfg.store_id, kind)
        for i in range(0, len(payloads), PUBLISH_CHUNK):
            self.client.publish(topic, "[" + ",".join(payloads[i:i + PUBLISH_CHUNK]) + "]",
                                qos=1)
