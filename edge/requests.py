"""The edge's request router: answers devices' questions on the store broker.

A device publishes on ``req/{device_id}`` (``contract.requests`` builds the
envelope); the router runs where the SQLite write connection lives (the writer
thread, or the writer process), after the batch of device messages received
with the request, and returns the replies to publish on ``reply/{device_id}``.

Guarantees (docs/protocol.md section 13):

* **Every request gets an answer or a quarantine row, never silence.** A bad
  envelope, an unknown op, a kind that may not ask, a body that fails its
  schema, an unknown device: each is a structured error reply. Only a request
  with no readable ``request_id`` (nobody to answer) is quarantined as
  ``bad_request``.
* **Committed means committed.** All requests of a batch run in one
  transaction, each in a savepoint (a failing handler rolls back alone and
  answers ``internal``); the replies are returned, and so published, only after
  COMMIT. A reply saying ``"committed": true`` is therefore never a promise the
  database has not kept.
* **Idempotent request ids.** The reply to ``(device_id, request_id)`` is stored
  in the same transaction; a retry is answered from the stored reply without
  running the op again (kept ``remember_s``, 24 h by default). ``internal``
  errors are not stored: a retry runs the op again.
* **Each caller asks only about itself.** The handler gets a
  :class:`RequestContext` with the device id taken from the topic (which the
  broker ACL ties to the username), never from the payload.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from contract.requests import (
    REQUEST_OPS,
    RequestError,
    build_reply,
    parse_request_envelope,
    readable_request_id,
)
from contract.topics import TopicError, parse_request_topic, reply_topic

from .catalogue import Catalogue
from .db import immediate
from .inbound import Inbound

log = logging.getLogger("vitrine.edge.requests")
#: How long a reply is kept for retries of the same request id.
REMEMBER_S = 24 * 3600.0
_PRUNE_EVERY_S = 600.0


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a handler knows about the call: who asks (from the topic), when, and the DB."""

    device_id: str
    kind: str
    zone: str | None
    store_id: str
    #: Edge receive time of the request (session times are edge times too).
    now: float
    conn: sqlite3.Connection


Handler = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class OutboundReply:
    """A reply to publish (QoS 1) once the transaction that made it has committed."""

    topic: str
    payload: bytes
    device_id: str
    request_id: str
    ok: bool


class RequestRouter:
    def __init__(self, store_id: str, conn: sqlite3.Connection, catalogue: Catalogue, *,
                 remember_s: float = REMEMBER_S,
                 on_rollback: Callable[[], None] | None = None):
        """``on_rollback`` re-reads in-memory state (the pipeline's sessions) after a
        rollback, so memory never keeps what the database did not."""
        self.store_id = store_id
        self._on_rollback = on_rollback
        self.conn = conn
        self.catalogue = catalogue
        self.remember_s = remember_s
        self._handlers: dict[str, Handler] = {}
        self._next_prune = 0.0
        self.counts: dict[str, int] = {}

    def register(self, op: str, handler: Handler) -> None:
        """Answer ``op`` (which must be in ``contract.requests.REQUEST_OPS``) with ``handler``.

        ``handler(ctx, body)`` gets a body already checked against the op's request
        schema and returns the reply body, or raises ``RequestError``.
        """
        if op not in REQUEST_OPS:
            raise ValueError(f"{op!r} is not an op of the contract (contract/schemas/ops/)")
        self._handlers[op] = handler

    # -- batch --------------------------------------------------------------------
    def process(self, items: list[Inbound]) -> list[OutboundReply]:
        """Run a batch of requests in one transaction; return the replies, after COMMIT."""
        conn = self.conn
        replies: list[OutboundReply] = []
        try:
            with immediate(conn):
                for item in items:
                    reply = self._one(item)
                    if reply is not None:
                        replies.append(reply)
                now = max((i.received_at for i in items), default=0.0)
                if now >= self._next_prune:
                    self._next_prune = now + _PRUNE_EVERY_S
                    conn.execute("DELETE FROM request_replies WHERE at < ?",
                                 (now - self.remember_s,))
        except BaseException:
            if self._on_rollback is not None:
                self._on_rollback()
            raise
        return replies

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def _one(self, item: Inbound) -> OutboundReply | None:
        try:
            _store, device_id = parse_request_topic(item.topic)
        except TopicError as exc:  # the subscription makes this impossible; still no crash
            self._quarantine(item, "bad_request", str(exc), None)
            return None
        topic = reply_topic(self.store_id, device_id)
        try:
            request = parse_request_envelope(item.payload)
        except RequestError as exc:
            rid = readable_request_id(item.payload)
            if rid is None:  # no id to answer to: keep it for inspection instead
                self._quarantine(item, "bad_request", exc.message, device_id)
                return None
            return self._error(topic, device_id, rid, "?", item.received_at, exc)
        stored = self.conn.execute(
            "SELECT reply FROM request_replies WHERE device_id = ? AND request_id = ?",
            (device_id, request.request_id)).fetchone()
        if stored is not None:
            self._count("replayed")
            return OutboundReply(topic, stored[0].encode(), device_id, request.request_id,
                                 bool(orjson.loads(stored[0])["ok"]))
        try:
            body = self._run(device_id, request.op, request.body, item.received_at)
        except RequestError as exc:
            return self._error(topic, device_id, request.request_id, request.op,
                               item.received_at, exc)
        reply = build_reply(request.request_id, request.op, item.received_at, body=body)
        return self._remember(topic, device_id, request.op, reply)

    def _run(self, device_id: str, op: str, body: dict[str, Any], now: float) -> dict[str, Any]:
        device = self.catalogue.device(device_id)
        if device is None:
            raise RequestError("forbidden", f"{device_id} is not a registered device")
        spec = REQUEST_OPS.get(op)
        handler = self._handlers.get(op)
        if spec is None or handler is None:
            raise RequestError("unknown_op", f"this edge does not answer {op!r}")
        if device.kind not in spec.kinds:
            raise RequestError("forbidden", f"a {device.kind} may not ask {op!r}")
        spec.check_request(body)
        ctx = RequestContext(device_id, device.kind, device.zone, self.store_id, now, self.conn)
        self.conn.execute("SAVEPOINT req")
        try:
            out = handler(ctx, body)
            spec.check_reply(out)
        except RequestError as exc:
            self.conn.execute("ROLLBACK TO req")
            self.conn.execute("RELEASE req")
            if exc.code == "bad_request":  # our own reply failed its schema: our bug
                log.error("%s handler returned an invalid reply: %s", op, exc.message)
                raise RequestError("internal", "the edge built an invalid reply") from None
            raise
        except sqlite3.Error:
            self.conn.execute("ROLLBACK TO req")
            self.conn.execute("RELEASE req")
            raise  # the whole batch is retried by the writer loop
        except Exception:
            self.conn.execute("ROLLBACK TO req")
            self.conn.execute("RELEASE req")
            if self._on_rollback is not None:
                self._on_rollback()
            log.exception("request handler %s failed for %s", op, device_id)
            raise RequestError("internal", f"the edge failed to answer {op!r}") from None
        self.conn.execute("RELEASE req")
        return out

    def _error(self, topic: str, device_id: str, request_id: str, op: str, now: float,
               exc: RequestError) -> OutboundReply:
        self._count(f"error.{exc.code}")
        log.info("request %s/%s (%s) answered with %s: %s", device_id, request_id, op,
                 exc.code, exc.message)
        reply = build_reply(request_id, op, now, error=exc)
        if exc.code == "internal":  # not remembered: a retry should run the op again
            return OutboundReply(topic, orjson.dumps(reply), device_id, request_id, False)
        return self._remember(topic, device_id, op, reply)

    def _remember(self, topic: str, device_id: str, op: str,
                  reply: dict[str, Any]) -> OutboundReply:
        text = orjson.dumps(reply)
        self.conn.execute(
            "INSERT INTO request_replies (device_id, request_id, op, reply, at)"
            " VALUES (?, ?, ?, ?, ?)",
            (device_id, reply["request_id"], op[:32], text.decode(), reply["ts"]))
        self._count("ok" if reply["ok"] else "error")
        return OutboundReply(topic, text, device_id, reply["request_id"], reply["ok"])

    def _quarantine(self, item: Inbound, reason: str, detail: str,
                    device_id: str | None) -> None:
        self._count(f"quarantined.{reason}")
        log.warning("request on %s quarantined (%s): %s", item.topic[:200], reason, detail)
        self.conn.execute(
            "INSERT INTO quarantine (received_at, topic, device_id, reason, detail, size, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item.received_at, item.topic[:512], device_id, reason, detail[:200],
             len(item.payload), item.payload))
