"""In-store request/response: the contract a device and the edge's router share.

A device (today: a kiosk) publishes a request on ``req/{device_id}`` and the edge
answers on ``reply/{device_id}`` (``contract.topics``); docs/protocol.md section 13
says why the correlation travels in the payload (``request_id``) and the reply
topic is fixed by convention rather than taken from the MQTT 5 Response Topic.

Each op is described by ``schemas/ops/{op}.json``: the kinds that may ask it, whether
it commits, and a JSON Schema for its request body and for its reply body. This
module loads them into :data:`REQUEST_OPS`, builds and checks both envelopes
(``schemas/request.json``, ``schemas/reply.json``), and defines the two failures a
caller sees: :class:`RequestError` (the edge answered with an error) and
:class:`RequestTimeout` (no answer in time; retry with the same ``request_id``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from .kiosk_ops import KIOSK_ERRORS, KIOSK_OP_NAMES
from .validation import SchemaError, validate

#: Largest request or reply accepted, in bytes: ops carry ids, not documents.
MAX_REQUEST_BYTES = 8_192
#: Error codes of ``reply.json`` and what each means to a caller.
ERROR_CODES = {
    "bad_request": "not JSON, or the envelope or body does not match its schema; do not retry",
    "unknown_op": "the edge does not know this op (older edge?); do not retry",
    "forbidden": "this device's kind may not ask this op; do not retry",
    "not_found": "the thing asked about does not exist (e.g. an unknown GTIN)",
    "internal": "the edge failed (e.g. its database); retry with the same request_id",
    **KIOSK_ERRORS,
}
_OP_NAMES = ("ping", "product", "stock", "session_end", *KIOSK_OP_NAMES)


class RequestError(Exception):
    """A structured error reply (or a request refused before sending): ``.code``, ``.message``."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RequestTimeout(TimeoutError):
    """No reply within the timeout. Retrying with the same ``request_id`` is safe."""

    def __init__(self, request_id: str, timeout: float):
        super().__init__(f"no reply to request {request_id} within {timeout:g}s")
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class RequestOp:
    """One op: who may ask it, whether its reply promises a commit, its two body schemas."""

    name: str
    kinds: tuple[str, ...]
    commits: bool
    description: str
    request_schema: dict[str, Any]
    reply_schema: dict[str, Any]

    def check_request(self, body: Any) -> dict[str, Any]:
        return _check(_compiled(self.name, "request"), body, f"{self.name} request")

    def check_reply(self, body: Any) -> dict[str, Any]:
        return _check(_compiled(self.name, "reply"), body, f"{self.name} reply")


def _check(fn: Callable[[Any], Any], body: Any, what: str) -> dict[str, Any]:
    try:
        fn(body)
    except fastjsonschema.JsonSchemaException as exc:
        raise RequestError("bad_request", f"{what}: {exc.message}"[:200]) from None
    return body


def _load_ops() -> dict[str, RequestOp]:
    ops = {}
    for name in _OP_NAMES:
        raw = json.loads(resources.files("contract").joinpath("schemas", "ops", f"{name}.json")
                         .read_text("utf-8"))
        if raw["op"] != name:
            raise RuntimeError(f"schemas/ops/{name}.json describes op {raw['op']!r}")
        ops[name] = RequestOp(name, tuple(raw["kinds"]), bool(raw["commits"]),
                              raw["description"], raw["request"], raw["reply"])
    return ops


#: Every op the contract defines, by name (the edge may implement them all).
REQUEST_OPS: dict[str, RequestOp] = _load_ops()


@cache
def _compiled(op: str, side: str) -> Callable[[Any], Any]:
    o = REQUEST_OPS[op]
    return fastjsonschema.compile(o.request_schema if side == "request" else o.reply_schema)


@dataclass(frozen=True, slots=True)
class Request:
    request_id: str
    op: str
    body: dict[str, Any]
    ts: float | None = None


def build_request(op: str, body: dict[str, Any], request_id: str,
                  ts: float | None = None) -> dict[str, Any]:
    """The request envelope a device publishes; raises RequestError for a bad op or body."""
    if op not in REQUEST_OPS:
        raise RequestError("unknown_op", f"unknown op {op!r}")
    REQUEST_OPS[op].check_request(body)
    env: dict[str, Any] = {"request_id": request_id, "op": op, "body": body}
    if ts is not None:
        env["ts"] = ts
    try:
        return validate("request", env)
    except SchemaError as exc:
        raise RequestError("bad_request", str(exc)[:200]) from None


def _loads(data: bytes | str, what: str) -> Any:
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestError("bad_request", f"{what} of {len(data)} bytes "
                                          f"(limit {MAX_REQUEST_BYTES})")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError("bad_request", f"{what} is not JSON: {exc}"[:200]) from None


def parse_request_envelope(data: bytes | str) -> Request:
    """Check a received request's envelope (not yet its op or body): RequestError if bad.

    The edge answers a bad envelope with ``bad_request`` when it can read a
    ``request_id`` from it, and otherwise quarantines it (nobody to answer).
    """
    obj = _loads(data, "request")
    try:
        validate("request", obj)
    except SchemaError as exc:
        raise RequestError("bad_request", str(exc)[:200]) from None
    return Request(obj["request_id"], obj["op"], obj["body"], obj.get("ts"))


def readable_request_id(data: bytes | str) -> str | None:
    """The ``request_id`` of a request too broken to parse fully, if one can be read safely."""
    try:
        obj = json.loads(data) if len(data) <= MAX_REQUEST_BYTES else None
    except (ValueError, UnicodeDecodeError):
        return None
    rid = obj.get("request_id") if isinstance(obj, dict) else None
    try:
        validate("request", {"request_id": rid, "op": "x", "body": {}})
    except SchemaError:
        return None
    return rid


def build_reply(request_id: str, op: str, ts: float, *, body: dict[str, Any] | None = None,
                error: RequestError | None = None) -> dict[str, Any]:
    """A success (``body``) or error (``error``) reply envelope, valid against reply.json."""
    reply: dict[str, Any] = {"request_id": request_id, "op": op[:32], "ok": error is None,
                             "ts": ts}
    if error is None:
        reply["body"] = body if body is not None else {}
    else:
        code = error.code if error.code in ERROR_CODES else "internal"
        reply["error"] = {"code": code, "message": error.message[:200]}
    return validate("reply", reply)


@dataclass(frozen=True, slots=True)
class Reply:
    request_id: str
    op: str
    ok: bool
    ts: float
    body: dict[str, Any] | None = None
    error: RequestError | None = None


def parse_reply(data: bytes | str) -> Reply:
    """Check a received reply; RequestError("bad_request") if it is not a valid envelope."""
    obj = _loads(data, "reply")
    try:
        validate("reply", obj)
    except SchemaError as exc:
        raise RequestError("bad_request", f"bad reply: {exc}"[:200]) from None
    err = obj.get("error")
    return Reply(obj["request_id"], obj["op"], obj["ok"], obj["ts"], obj.get("body"),
                 RequestError(err["code"], err["message"]) if err else None)
