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
import secrets
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
    commit_topic,
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
#: Where the dynamic-security plugin takes commands, and answers them.
DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"
DYNSEC_RESPONSE = DYNSEC_TOPIC + "/response"


class EdgeBus:
    def __init__(self, cfg: EdgeConfig, on_message: Callable[[Inbound], None],
                 version: str = "0.1.0", on_connected: Callable[[], None] | None = None):
        self.cfg = cfg
        self._on_connected = on_connected
        self._on_inbound = on_message
        self.connected = threading.Event()
        self.version = version
        #: The broker makes every client id its username (``use_username_as_clientid``):
        #: the persistent session is the edge login's, and no device can take it.
        client_id = cfg.mqtt_username
        if cfg.mqtt_protocol == "3.1.1":
            # No MQTT 5 properties to decode on every message: measurably cheaper.
            # The broker's max_inflight_messages then plays Receive Maximum's role.
            c = VitrineClient(client_id, protocol=mqtt.MQTTv311, manual_ack=True,
                              clean_session=False)
        elif cfg.mqtt_protocol == "5":
            c = VitrineClient(client_id, manual_ack=True)
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
        # One callback for everything, the broker's dynsec answers picked out by a string
        # compare: a message_callback_add makes paho walk its topic matcher for every
        # device message (measured, ~3 % of the receiving thread).
        c.on_message = self._on_message
        # MQTT 3.1.1: publishes as plain values, no MQTTMessage (contract/mqtt_wire.py).
        c.on_publish_received = self._on_publish
        c.on_subscribe = self._on_subscribe
        self._sub_mid: int | None = None
        self.client = c
        #: Topics whose retained message we just cleared: the empty publish comes back
        #: to our own subscription and is not a device message.
        self._clearing: set[str] = set()
        self._clear_lock = threading.Lock()

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
        # Answers of the dynamic-security plugin (flood cut-offs), apart: a broker without
        # the plugin must not make the edge's own subscriptions look refused.
        client.subscribe(DYNSEC_RESPONSE, 1)
        client.publish(self._state_topic,
                       json.dumps({"state": "online", "fw": self.version,
                                   "ts": time.time()}), qos=1, retain=True)
        log.info("edge connected to %s:%d (session present: %s)", self.cfg.mqtt_host,
                 self.cfg.mqtt_port, getattr(flags, "session_present", "?"))
        if self._on_connected is not None:
            self._on_connected()

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
        """paho's callback (MQTT 5 sessions): the same as :meth:`_on_publish`."""
        self._on_publish(msg.mid, msg.qos, msg.topic, msg.payload, bool(msg.retain))

    def _on_publish(self, mid: int, qos: int, topic: str, payload: bytes, retain: bool) -> None:
        if topic == DYNSEC_RESPONSE:
            self._on_dynsec_response(mid, qos, payload)
            return
        if not payload and self._clearing and topic in self._clearing:
            with self._clear_lock:
                self._clearing.discard(topic)
            self.ack(mid, qos)  # our own clearing of a retained message, echoed
            return
        if retain and "/devices/" in topic and not topic.endswith("/state"):
            # Retained is for births only: a device must not park data at the broker,
            # replayed to us at every connect. Processed like any message, then cleared.
            self.clear_retained(topic)
        self._on_inbound(Inbound(mid, qos, topic, payload, time.time(), retain))

    def _on_dynsec_response(self, mid: int, qos: int, payload: bytes) -> None:
        self.ack(mid, qos)
        try:
            responses = json.loads(payload).get("responses", [])
        except (ValueError, AttributeError):
            responses = []
        for r in responses:
            # createClient of a device already known to the plugin is expected.
            if r.get("error") and "already exists" not in str(r.get("error")):
                log.warning("broker refused %s: %s", r.get("command"), r.get("error"))

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge one message now (one that will not be stored: see edge/flood.py)."""
        if qos == 1:
            self.client.ack_many([mid])

    # -- broker control ------------------------------------------------------------
    def cut_off(self, device_id: str) -> None:
        """Disable ``device_id``'s login at the broker: disconnected now, refused until reinstated.

        The dynamic-security plugin only knows the devices the edge disabled; it
        defers every other login to the password file. The random password is
        never used: the client exists only to be disabled.
        """
        self._dynsec([{"command": "createClient", "username": device_id,
                       "password": secrets.token_urlsafe(24)},
                      {"command": "disableClient", "username": device_id}])

    def reinstate(self, device_id: str) -> None:
        """Give ``device_id`` back to the password file (its own credentials work again)."""
        self._dynsec([{"command": "deleteClient", "username": device_id}])

    def _dynsec(self, commands: list[dict[str, Any]]) -> None:
        self.client.publish(DYNSEC_TOPIC, json.dumps({"commands": commands}), qos=1)

    def clear_retained(self, topic: str) -> None:
        """Delete a retained message a device left outside its ``state`` channel."""
        with self._clear_lock:
            self._clearing.add(topic)
        self.client.publish(topic, b"", qos=1, retain=True)

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

    def publish_commits(self, done: dict[str, list[str]]) -> None:
        """Tell each device which of its messages are committed (after the commit, QoS 1).

        The device keeps every message until it is named here, and resends the
        ones still unconfirmed after a reconnect: a broker that crashed and lost
        its queue loses nothing a device still holds (docs/protocol.md).
        """
        for device_id, ids in done.items():
            topic = commit_topic(self.cfg.store_id, device_id)
            for i in range(0, len(ids), PUBLISH_CHUNK * 2):
                self.client.publish(topic, json.dumps(
                    {"committed": ids[i:i + PUBLISH_CHUNK * 2]}, separators=(",", ":")), qos=1)
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
