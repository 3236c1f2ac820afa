"""Central's HTTP API as an OpenAPI 3.1 document, served at ``GET /api/v1/openapi.json``.

Built from the schemas the code itself validates with (the order schema of
:mod:`central.orders`, the channel event schema of :mod:`central.events`, the
contract's event schemas), so the document cannot describe a body the server
refuses. ``tests/central/test_openapi.py`` checks that it is a valid OpenAPI
document, that its paths and methods are exactly the app's routes, and posts
its examples to a real server.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, jsonify

from central.events import CHANNEL_EVENT_SCHEMA, CONSENT_PURPOSES
from central.order_status import STATUS_CHANGE_SCHEMA
from central.orders import ORDER_SCHEMA
from contract.order_lifecycle import STATUSES
from contract.validation import schema as contract_schema

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

VERSION = "1.0.0"


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema without the keys that only make sense at a document's root."""
    out = copy.deepcopy(schema)
    for key in ("$id", "$schema"):
        out.pop(key, None)
    return out


def _json(schema: dict[str, Any] | str, description: str = "") -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
    body: dict[str, Any] = {"content": {"application/json": {"schema": ref}}}
    if description:
        body["description"] = description
    return body


def _ok(description: str, schema: dict[str, Any] | str | None = None) -> dict[str, Any]:
    return {"description": description,
            **({} if schema is None else _json(schema))}


_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
}


def _op(summary: str, security: list[str], responses: dict[str, Any], *,
        params: list[str] = (), query: list[tuple[str, str]] = (), body: Any = None,
        description: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**responses}}
    if description:
        op["description"] = description
    if security:
        op["security"] = [{"bearer": []}]
        op["responses"].update(_ERRORS)
        op["x-credential-kinds"] = security
    else:
        op["security"] = []
    parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in params]
    parameters += [{"name": q, "in": "query", "required": False, "description": d,
                    "schema": {"type": "integer", "minimum": 0}} for q, d in query]
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, **body}
    return op


EXAMPLE_ORDER = {
    "order_id": "kiosk-store-001-000123", "channel": "kiosk", "customer_id": "C0005278",
    "created_at": 1767225600.0,
    "fulfilment": {"type": "click_and_collect", "store_id": "store-001"},
    "lines": [{"gtin": "04063511002891", "quantity": 1, "unit_price_cents": 11999}],
}


EXAMPLE_CHANGE = {"status": "paid", "change_id": "web-pay-000123",
                  "occurred_at": 1767225700.0, "actor": "checkout"}


def document() -> dict[str, Any]:
    """The OpenAPI document (a new dict each call)."""
    schemas: dict[str, Any] = {
        "Order": {**_plain(ORDER_SCHEMA), "examples": [EXAMPLE_ORDER]},
        "StatusChange": {**_plain(STATUS_CHANGE_SCHEMA), "examples": [EXAMPLE_CHANGE]},
        "OrderChange": {
            "type": "object",
            "description": "One entry of a store's order log: a new order routed to the "
                           "store (previous null) or a status change, with the order.",
            "required": ["seq", "order_id", "previous", "status", "changed_by", "actor",
                         "occurred_at", "recorded_at", "channel", "pickup_code", "store_id",
                         "taken_by", "order"],
            "properties": {
                "seq": {"type": "integer", "description": "the cursor (since=)"},
                "order_id": {"type": "string"},
                "previous": {"type": ["string", "null"]},
                "status": {"enum": list(STATUSES)},
                "changed_by": {"type": "string", "description": "the credential: "
                               "store:<id>, channel:<name> or admin:admin"},
                "actor": {"type": ["string", "null"], "description": "who, as the "
                          "caller named them (a panel user, a kiosk, a desk)"},
                "occurred_at": {"type": "number"},
                "recorded_at": {"type": "number"},
                "channel": {"type": "string"},
                "pickup_code": {"type": ["string", "null"], "description": "the code "
                                "the customer holds: central's for a channel's click & "
                                "collect order, the taking kiosk's for a kiosk's"},
                "store_id": {"type": "string", "description": "the fulfilling store"},
                "taken_by": {"type": ["string", "null"], "description": "the store "
                             "whose kiosk took the order for another store (it reads the "
                             "status, and may only pay or cancel before paid), else null"},
                "order": {"$ref": "#/components/schemas/Order"}}},
        "ChannelEvent": _plain(CHANNEL_EVENT_SCHEMA),
        **{f"{k.capitalize()}Event": _plain(contract_schema(k))
           for k in ("interest", "presence", "security")},
        "PlayEvent": _plain(contract_schema("play_event")),
        "Error": {"type": "object", "required": ["error", "message"],
                  "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
        "Consents": {
            "type": "object", "minProperties": 1,
            "properties": {**{p: {"type": "boolean"} for p in CONSENT_PURPOSES},
                           "at": {"type": "number", "description": "when the customer "
                                  "decided (UNIX seconds); default now"}},
            "additionalProperties": False},
        "Profile": {
            "type": "object",
            "description": "The full profile (channel and admin credentials). A store "
                           "credential gets the summary of docs/permissions.md: "
                           "customer_id, name, loyalty_points, interests, last_seen and "
                           "timeline, this store's part only.",
            "required": ["customer_id", "loyalty_points", "last_seen", "interests",
                         "timeline"],
            "properties": {
                "customer_id": {"type": "string"},
                "name": {"type": ["string", "null"]},
                "identity": {"type": "object"},
                "consents": {"type": "object"},
                "tracking": {"type": "boolean", "description": "Are visits recorded now "
                             "(tracking consent, the default included)?"},
                "loyalty_points": {"type": "integer"},
                "last_seen": {"type": ["object", "null"]},
                "interests": {"type": "object"},
                "timeline": {"type": "array", "items": {"type": "object"}},
            }},
    }
    event_items = {"anyOf": [{"$ref": f"#/components/schemas/{n}"} for n in
                             ("InterestEvent", "PresenceEvent", "SecurityEvent",
                              "PlayEvent", "ChannelEvent")]}
    feed_query = [("since", "version after which to read (0: the full feed)"),
                  ("limit", "page size")]
    paths: dict[str, Any] = {
        "/api/v1/openapi.json": {"get": _op(
            "This document", [], {"200": _ok("The OpenAPI document")})},
        "/api/v1/healthz": {"get": _op(
            "Liveness and database dialect", [], {"200": _ok("Up", {"type": "object"})})},
        "/api/v1/events": {"post": _op(
            "Ingest a batch of events (edge outbox or a channel)", ["store", "channel"],
            {"200": _ok("Per event id: accepted, duplicate or rejected (with a reason)",
                        {"type": "object", "properties": {
                            "accepted": {"type": "array", "items": {"type": "string"}},
                            "duplicate": {"type": "array", "items": {"type": "string"}},
                            "rejected": {"type": "array", "items": {"type": "object"}}}})},
            body=_json({"type": "object", "required": ["events"],
                        "properties": {"events": {"type": "array", "items": event_items}}}),
            description="Idempotent on event_id. Interest and presence events of a "
                        "customer without tracking consent are kept anonymous.")},
        "/api/v1/orders": {"post": _op(
            "Submit an order (click & collect, home delivery)", ["store", "channel"],
            {"201": _ok("Accepted and durable", {"type": "object"}),
             "200": _ok("The same order again (duplicate)", {"type": "object"}),
             "403": _ok("Not this credential's to submit: another channel's, or a "
                        "store's order for another store without evidence", "Error"),
             "409": _ok("Same order_id, different content", "Error"),
             "429": _ok("Over taken_anonymous_orders_per_day (retry later)", "Error")},
            body=_json("Order"),
            description="A store credential submits kiosk orders: collected there, "
                        "home deliveries from the warehouse, or click & collect in another "
                        "store with evidence (the customer identified in this store, or "
                        "anonymous within a daily cap: docs/permissions.md); the answer's "
                        "taken_by then names it. A channel credential (the web shop: "
                        "channel web) orders of its own channel, click & collect in any "
                        "store included (the answer then holds the pickup_code). Every "
                        "order starts placed.")},
        "/api/v1/orders/{order_id}": {"get": _op(
            "One order: status, pickup code and every change (who, when)",
            ["store", "channel"],
            {"200": _ok("The order and its history", {"type": "object"}),
             "404": _ok("No such order for this credential (another store's or channel's "
                        "reads the same)", "Error")},
            params=["order_id"])},
        "/api/v1/orders/{order_id}/status": {"post": _op(
            "Move an order along its lifecycle", ["store", "channel"],
            {"201": _ok("Changed (logged with who and when)", {"type": "object"}),
             "200": _ok("duplicate (this change_id again) or unchanged (already in that "
                        "status)", {"type": "object"}),
             "403": _ok("An order this store took for another: only paid or cancelled, "
                        "and only while placed", "Error"),
             "404": _ok("No such order for this credential", "Error"),
             "409": _ok("A move the lifecycle refuses, or a change_id reused", "Error")},
            params=["order_id"], body=_json("StatusChange"),
            description="placed -> paid -> preparing -> ready -> collected, or cancelled "
                        "from any open status (contract/order_lifecycle.py). A store moves "
                        "the orders it fulfils (one it took for another store: paid or "
                        "cancelled while placed); a channel only its own channel's, to paid "
                        "or cancelled. Idempotent on change_id.")},
        "/api/v1/stores/{store_id}/order-changes": {"get": _op(
            "The store's order log after seq: new orders and status changes", ["store"],
            {"200": _ok("Changes (each with its order) and the next cursor",
                        {"type": "object", "required": ["changes", "next"],
                         "properties": {"changes": {"type": "array", "items": {
                             "$ref": "#/components/schemas/OrderChange"}},
                             "next": {"type": "integer"}}})},
            params=["store_id"], query=[("since", "seq after which to read"),
                                        ("limit", "page size, at most 500")])},
        "/api/v1/stores/{store_id}/orders": {"get": _op(
            "The store's order queue after seq", ["store"],
            {"200": _ok("Orders and the next cursor", {"type": "object"})},
            params=["store_id"], query=[("since", "seq after which to read"),
                                        ("limit", "page size, at most 1000")])},
        "/api/v1/customers/{customer_id}": {
            "get": _op("The single customer view (a store gets its summary)",
                       ["store", "channel"],
                       {"200": _ok("The profile", "Profile"),
                        "429": _ok("Over the lookup rate (Retry-After)", "Error"),
                        "404": _ok("No such member (or erased)", "Error")},
                       params=["customer_id"]),
            "delete": _op("Erase the customer (right to be forgotten)", ["channel"],
                          {"202": _ok("Erased centrally; edges follow within seconds",
                                      {"type": "object"})}, params=["customer_id"])},
        "/api/v1/stores/{store_id}/customers/{customer_id}/points": {"get": _op(
            "A member's points balance, for the store they showed their card in",
            ["store"],
            {"200": _ok("customer_id and loyalty_points only", {"type": "object"}),
             "429": _ok("Over the lookup rate (Retry-After)", "Error"),
             "404": _ok("Not shown in this store within store_points_window_s (or no "
                        "such member)", "Error")},
            params=["store_id", "customer_id"])},
        "/api/v1/customers/{customer_id}/consents": {"put": _op(
            "Record consent decisions", ["channel"],
            {"200": _ok("Which decisions were applied (an older one never overwrites a "
                        "newer one)", {"type": "object"})},
            params=["customer_id"], body=_json("Consents"))},
        "/api/v1/customers/{customer_id}/export": {"get": _op(
            "Everything held about the customer (right of access)", ["channel"],
            {"200": _ok("Profile, events and orders", {"type": "object"})},
            params=["customer_id"])},
        "/api/v1/stores/{store_id}/erasures": {"get": _op(
            "Erasure orders for an edge after seq", ["store"],
            {"200": _ok("Orders and the next cursor", {"type": "object"})},
            params=["store_id"], query=[("since", "seq after which to read"),
                                        ("limit", "page size, at most 1000")])},
        "/api/v1/stores/{store_id}/feeds/{feed}": {"get": _op(
            "A feed (catalogue, prices, stock) after a version", ["store"],
            {"200": _ok("One page of the feed", {"type": "object"}),
             "404": _ok("Unknown feed", "Error")},
            params=["store_id", "feed"], query=feed_query)},
        "/api/v1/admin/feeds/{feed}": {"put": _op(
            "Load feed rows (upserts and deletions)", ["admin"],
            {"200": _ok("The feed's new version", {"type": "object"})},
            params=["feed"], body=_json({"type": "object"}))},
        "/api/v1/admin/media": {"put": _op(
            "Store a product picture (JPEG, PNG or WebP) under its SHA-256", ["admin"],
            {"201": _ok("Its id and the path stores fetch it from", {"type": "object"})},
            body={"content": {m: {"schema": {"type": "string", "format": "binary"}}
                              for m in ("image/jpeg", "image/png", "image/webp")}},
            description="A catalogue load names a product's pictures by these ids.")},
        "/api/v1/media/{media_id}": {"get": _op(
            "A product picture named by the catalogue feed", ["store"],
            {"200": {"description": "The picture's bytes", "content": {
                m: {"schema": {"type": "string", "format": "binary"}}
                for m in ("image/jpeg", "image/png", "image/webp")}},
             "404": _ok("No such picture", "Error")}, params=["media_id"])},
        "/api/v1/admin/credentials": {
            "get": _op("List credentials (no secrets)", ["admin"],
                       {"200": _ok("Credentials", {"type": "object"})}),
            "post": _op("Issue (or rotate) a store or channel credential", ["admin"],
                        {"201": _ok("The token, shown once", {"type": "object"})},
                        body=_json({"type": "object", "required": ["kind", "name"],
                                    "properties": {"kind": {"enum": ["store", "channel"]},
                                                   "name": {"type": "string"}}}))},
        "/api/v1/admin/credentials/{kind}/{name}": {"delete": _op(
            "Revoke a credential", ["admin"], {"200": _ok("Revoked", {"type": "object"}),
                                               "404": _ok("No such credential", "Error")},
            params=["kind", "name"])},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Vitrine central", "version": VERSION,
                 "description": "Central customer profile service: ingest from stores "
                                "and channels, profiles, consent, erasure, orders, feeds. "
                                "See docs/operations.md."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "A store or channel credential (vtc_...) or the admin "
                               "token; x-credential-kinds on each operation says which."}},
            "responses": {
                "BadRequest": _ok("The request is malformed (reason in message)", "Error"),
                "Unauthorized": _ok("No or an unknown bearer token", "Error"),
                "Forbidden": _ok("This credential may not do this", "Error"),
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Any:
    return jsonify(document())
