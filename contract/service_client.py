"""The MQTT client of a service (not a device): the edge's stock-push listener, central's bridge.

A service principal (role ``edge`` in the broker ACL) needs less than a device
(no birth, no buffer: its source of truth is a database) but the same care:
TCP_NODELAY and buffered reads (:class:`contract.mqtt_wire.VitrineClient`),
reconnect with backoff, TLS with the store CA, subscriptions renewed on every
connect, and a publish that counts only when the broker acknowledged it with a
success reason code (paho alone reports an ACL refusal as "published").
Before this module the edge and central each hand-built their own paho client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from .mqtt_wire import VitrineClient

log = logging.getLogger("vitrine.service_client")

MessageHandler = Callable[[bytes], None]


class PublishError(Exception):
    """Not connected, no PUBACK in time, or the broker refused the message."""


class ServiceClient:
    """One service connection: subscribe with handlers, publish with a checked ack."""

    def __init__(self, host: str, port: int, username: str, password: str, *, client_id: str,
                 cafile: str | None = None, keepalive: int = 30,
                 reconnect_min_s: float = 0.2, reconnect_max_s: float = 10.0,
                 protocol: str = "5") -> None:
        """``protocol``: "5", or "3.1.1" for a subscriber on a broker that speaks only that
        (publishing needs 5: an ACL refusal is only visible in an MQTT 5 PUBACK)."""
        self.host, self.port = host, port
        self.connected = threading.Event()
        #: Set once every subscription of the current connection is acknowledged.
        self.subscribed = threading.Event()
        self._keepalive = keepalive
        self._handlers: dict[str, MessageHandler] = {}
        self._acks: dict[int, Any] = {}
        self._acks_lock = threading.Lock()
        self._pending_sub: int | None = None
        c = VitrineClient(client_id, protocol=mqtt.MQTTv311 if protocol == "3.1.1"
                          else mqtt.MQTTv5)
        c.username_pw_set(username, password or None)
        if cafile:
            c.tls_set(ca_certs=cafile)
        c.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        self.client = c

    def subscribe(self, topic: str, handler: MessageHandler) -> None:
        """Call ``handler(payload)`` for each QoS 1 message on ``topic`` (before :meth:`start`)."""
        self._handlers[topic] = handler

    def start(self) -> ServiceClient:
        """Connect in the background, retrying with backoff until :meth:`close`."""
        self.client.connect_async(self.host, self.port, keepalive=self._keepalive)
        self.client.loop_start()
        return self

    def publish(self, topic: str, payload: bytes, timeout_s: float = 10.0) -> None:
        """Publish QoS 1 and wait for the broker's PUBACK; :class:`PublishError` unless accepted."""
        if not self.connected.is_set():
            raise PublishError("not connected to the broker")
        info = self.client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise PublishError(f"publish failed: {exc}") from None
        if not info.is_published():
            raise PublishError(f"no PUBACK within {timeout_s:.0f} s")
        with self._acks_lock:
            reason = self._acks.pop(info.mid, None)
        if reason is not None and reason.is_failure:
            raise PublishError(f"broker refused the message: {reason}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # -- callbacks (paho's network thread) -------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            log.error("%s:%d refused the connection: %s", self.host, self.port, reason)
            return
        self.connected.set()
        if self._handlers:
            _rc, self._pending_sub = client.subscribe([(t, 1) for t in self._handlers])
        else:
            self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[Any],
                      props: Any) -> None:
        refused = [r for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            log.error("subscription refused by the broker (check the ACL role): %s", refused)
            return
        if mid == self._pending_sub:
            self.subscribed.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    props: Any) -> None:
        with self._acks_lock:
            self._acks[mid] = reason

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        handler = self._handlers.get(msg.topic)
        if handler is None:
            return
        try:
            handler(msg.payload)
        except Exception:  # a handler bug must not kill paho's network thread
            log.exception("handler for %s failed", msg.topic)
