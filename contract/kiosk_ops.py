"""The kiosk's requests to the edge: which ops, their schemas, and their structured errors.

Each op is one file ``schemas/ops/{op}.json`` in the device kit's format (who may
ask, whether it commits, request and reply schemas), so the kit's router and
this module read the same files. The kiosk validates what it sends, the edge
validates what it receives and what it answers.

Who the shopper is never comes from the kiosk: profile and order ops name the
*session* the edge opened when the shopper identified at this kiosk, and the
edge checks that the session is this device's current one. Amounts never come
from the kiosk either: an order names products and quantities, the edge prices
them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import fastjsonschema

#: The kiosk's ops (files under ``contract/schemas/ops/``).
KIOSK_OP_NAMES = ("kiosk_search", "kiosk_categories", "kiosk_product", "kiosk_profile",
                  "kiosk_consent", "kiosk_wishlist_add", "order_place", "order_pay",
                  "order_status")


def _load(name: str) -> dict[str, Any]:
    raw = json.loads(resources.files("contract").joinpath("schemas", "ops", f"{name}.json")
                     .read_text("utf-8"))
    if raw["op"] != name:
        raise RuntimeError(f"schemas/ops/{name}.json describes op {raw['op']!r}")
    return raw


#: op name -> its description file (``request`` and ``reply`` are JSON Schemas).
KIOSK_OPS: dict[str, dict[str, Any]] = {name: _load(name) for name in KIOSK_OP_NAMES}

#: Error codes a kiosk op can answer with, besides the kit's own, and what each means.
KIOSK_ERRORS: dict[str, str] = {
    "bad_request": "the body does not match the op's schema",
    "unknown_op": "no such kiosk op",
    "not_found": "no such product or order (for this kiosk)",
    "forbidden": "the session belongs to another device, or the caller is no kiosk",
    "session_ended": "the shopper's session is over (\"I'm done\", timeout, someone else)",
    "no_customer": "the session has no identified customer",
    "not_for_sale": "a product has no price at this store",
    "insufficient_points": "more points asked to spend than the customer has",
    "invalid_state": "the order is not in a state that allows this change",
}

_REQUEST: dict[str, Callable[[Any], Any]] = {
    op: fastjsonschema.compile(d["request"]) for op, d in KIOSK_OPS.items()}
_REPLY: dict[str, Callable[[Any], Any]] = {
    op: fastjsonschema.compile(d["reply"]) for op, d in KIOSK_OPS.items()}


class KioskOpError(ValueError):
    """A structured refusal: ``code`` is one of :data:`KIOSK_ERRORS`."""

    def __init__(self, code: str, message: str) -> None:
        assert code in KIOSK_ERRORS, code
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _check(table: dict[str, Callable[[Any], Any]], op: str, body: Any, what: str
           ) -> dict[str, Any]:
    check = table.get(op)
    if check is None:
        raise KioskOpError("unknown_op", f"{op!r} is not a kiosk op")
    try:
        check(body)
    except fastjsonschema.JsonSchemaException as exc:
        raise KioskOpError("bad_request", f"{op} {what}: {exc.message}"[:200]) from None
    return body


def validate_body(op: str, body: Any) -> dict[str, Any]:
    """Return ``body`` if it is a valid request for ``op``; raise :class:`KioskOpError`."""
    return _check(_REQUEST, op, body, "request")


def validate_reply(op: str, body: Any) -> dict[str, Any]:
    """Return ``body`` if it is a valid reply of ``op``; raise :class:`KioskOpError`."""
    return _check(_REPLY, op, body, "reply")
