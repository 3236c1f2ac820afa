"""The kiosk's requests to the edge: op names, request schemas, and the structured errors.

A kiosk asks the edge through the device kit's request/response
(``DeviceSession.request(op, body)``); this module is the one place both sides
read what each op takes, so the kiosk builds bodies the edge accepts and the
edge refuses anything else with a structured error before a handler sees it.

Who the shopper is never comes from the kiosk: profile and order ops name the
*session* the edge opened when the shopper identified at this kiosk, and the
edge checks that the session belongs to the calling device. Amounts never come
from the kiosk either: an order names products and quantities, the edge prices
them.
"""

from __future__ import annotations

from typing import Any

import fastjsonschema

_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"}
_GTIN = {"type": "string", "pattern": "^[0-9]{14}$"}
_SESSION = {"type": ["string", "null"], "pattern": "^[A-Za-z0-9-]{1,64}$"}

#: op name -> JSON Schema of the request body.
KIOSK_OPS: dict[str, dict[str, Any]] = {
    "kiosk.search": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "q": {"type": "string", "maxLength": 100},
            "category": {"type": ["string", "null"], "maxLength": 64},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50},
        },
    },
    "kiosk.categories": {"type": "object", "additionalProperties": False, "properties": {}},
    "kiosk.product": {
        "type": "object", "additionalProperties": False, "required": ["gtin"],
        "properties": {"gtin": _GTIN},
    },
    "kiosk.profile": {
        "type": "object", "additionalProperties": False, "required": ["session_id"],
        "properties": {"session_id": _SESSION},
    },
    "kiosk.consent": {
        "type": "object", "additionalProperties": False, "required": ["session_id", "granted"],
        "properties": {"session_id": _SESSION, "granted": {"type": "boolean"}},
    },
    "kiosk.wishlist.add": {
        "type": "object", "additionalProperties": False, "required": ["session_id", "gtin"],
        "properties": {"session_id": _SESSION, "gtin": _GTIN},
    },
    "kiosk.order.place": {
        "type": "object", "additionalProperties": False,
        "required": ["client_order_id", "lines", "fulfilment"],
        "properties": {
            "client_order_id": _ID,
            "session_id": _SESSION,
            "lines": {
                "type": "array", "minItems": 1, "maxItems": 50,
                "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["gtin", "quantity"],
                    "properties": {"gtin": _GTIN,
                                   "quantity": {"type": "integer", "minimum": 1, "maximum": 99}},
                },
            },
            "fulfilment": {
                "type": "object", "additionalProperties": False, "required": ["type"],
                "properties": {
                    "type": {"enum": ["click_and_collect", "home_delivery"]},
                    "store_id": _ID,
                    "address": {
                        "type": "object", "additionalProperties": False,
                        "required": ["line1", "postcode", "city"],
                        "properties": {k: {"type": "string", "minLength": 1, "maxLength": 120}
                                       for k in ("line1", "postcode", "city")},
                    },
                },
            },
            "spend_points": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        },
    },
    "kiosk.order.pay": {
        "type": "object", "additionalProperties": False,
        "required": ["order_id", "payment_ref", "outcome"],
        "properties": {"order_id": _ID, "payment_ref": _ID,
                       "outcome": {"enum": ["approved", "declined"]}},
    },
    "kiosk.order.status": {
        "type": "object", "additionalProperties": False, "required": ["order_id"],
        "properties": {"order_id": _ID},
    },
    "kiosk.session.end": {
        "type": "object", "additionalProperties": False, "required": ["session_id"],
        "properties": {"session_id": _SESSION},
    },
}

#: Error codes a kiosk op can answer with (``RequestError.code``), each with its meaning.
KIOSK_ERRORS: dict[str, str] = {
    "bad_request": "the body does not match the op's schema",
    "unknown_op": "no such kiosk op",
    "not_found": "no such product or order (for this kiosk)",
    "forbidden": "the session or order belongs to another device, or the caller is no kiosk",
    "session_ended": "the shopper's session ended (timeout or \"I'm done\")",
    "no_customer": "the session has no identified customer",
    "not_for_sale": "a product has no price at this store",
    "insufficient_points": "more points asked to spend than the customer has",
    "invalid_state": "the order is not in a state that allows this change",
}

_VALIDATORS = {op: fastjsonschema.compile(schema) for op, schema in KIOSK_OPS.items()}


class KioskOpError(ValueError):
    """A structured refusal: ``code`` is one of :data:`KIOSK_ERRORS`."""

    def __init__(self, code: str, message: str) -> None:
        assert code in KIOSK_ERRORS, code
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def validate_body(op: str, body: Any) -> dict[str, Any]:
    """Return ``body`` if it is a valid request for ``op``; raise :class:`KioskOpError`."""
    check = _VALIDATORS.get(op)
    if check is None:
        raise KioskOpError("unknown_op", f"{op!r} is not a kiosk op")
    try:
        check(body)
    except fastjsonschema.JsonSchemaException as exc:
        raise KioskOpError("bad_request", f"{op}: {exc.message}") from None
    return body
