"""Orders (click & collect, home delivery): accepted durably and routed to a store.

``POST /api/v1/orders`` stores the order in the same transaction that answers
it (SQLite ``synchronous=FULL``, PostgreSQL commit), so a 201 means it
survives a crash. The order id is the idempotency key: the same order sent
twice is a 200 ``duplicate``; the same id with another content is a 409, never
a silent overwrite. The fulfilling store reads its queue with
``GET /api/v1/stores/<store>/orders?since=<seq>``.

Who may submit what: a channel credential (the retailer's web shop is channel
``web``) orders of its own channel, click & collect in any store included; the
admin anything; a store credential only its kiosks' orders (channel ``kiosk``):

- collected in this store, or delivered from it: the store fulfils them;
- *taken* for another: a home delivery from the web warehouse, or click &
  collect in another store (:func:`check_taken`), which needs evidence that a
  shopper really stood at this store's kiosk: the order names this store as the
  one that took it, and either the customer identified in this store (central's
  ``customer_stores``: within ``store_profile_window_days`` of the order's
  ``created_at``; for a customer without tracking consent central keeps no time,
  only that they identified there) or the order is anonymous, at most
  ``taken_anonymous_orders_per_day`` a day (429 beyond, which the edge retries;
  counted and inserted as one step per taking store, so concurrent workers cannot
  both pass it). Anything else is a 403: a store cannot queue arbitrary orders in another.

A taken order records ``taken_by`` (the taking store): it is routed to the
fulfilling store's order log (that store's pickup queue) and to the taking
store's too, which reads its status (its kiosk shows it) but may only pay or
cancel it before it is paid (:mod:`central.order_status`). Every order starts
``placed``; what happens next is :mod:`central.order_status`. A click & collect
order from a channel gets a six-digit pickup code here, answered to the channel
(the web shop shows it as the pickup QR) and sent to the fulfilling store with
the order; a kiosk order's code is the edge's own, sent with the order
(``pickup_code``) so that whichever store fulfils it can check it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import fastjsonschema
from flask import Blueprint, current_app, g, jsonify

from central.auth import require, require_store_scope
from central.config import CentralConfig
from central.db import Tx
from central.errors import BadRequest, Conflict, Forbidden, TooManyRequests
from central.order_status import record_change
from central.request_input import int_arg, json_body
from contract.central_api import API_PREFIX

bp = Blueprint("orders", __name__, url_prefix=API_PREFIX)

ORDER_CHANNELS = ("kiosk", "web", "app", "call_centre")
_ID = {"type": "string", "minLength": 1, "maxLength": 128}

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["order_id", "channel", "created_at", "fulfilment", "lines"],
    "properties": {
        "order_id": _ID,
        "channel": {"enum": list(ORDER_CHANNELS)},
        "customer_id": {"type": ["string", "null"], "maxLength": 128},
        "store_id": _ID,
        "pickup_code": {"type": "string", "pattern": "^[0-9]{6}$"},
        "created_at": {"type": "number", "minimum": 0, "maximum": 1e11},
        "fulfilment": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"enum": ["click_and_collect", "home_delivery"]},
                "store_id": _ID,
                "address": {"type": "object"},
            },
        },
        "lines": {
            "type": "array", "minItems": 1, "maxItems": 500,
            "items": {
                "type": "object",
                "required": ["gtin", "quantity"],
                "properties": {
                    "gtin": {"type": "string", "pattern": "^[0-9]{14}$"},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 10_000},
                    "unit_price_cents": {"type": "integer", "minimum": 0,
                                         "maximum": 10**10},
                },
            },
        },
    },
}
_validate_order = fastjsonschema.compile(ORDER_SCHEMA)
DAY_S = 86_400.0
#: How far ahead of central's clock a taken order's ``created_at`` may be.
CLOCK_SKEW_S = 300.0


def route(order: dict[str, Any], home_delivery_store: str) -> str:
    """The store that fulfils ``order``: the pick-up store, else the one named, else the web's."""
    fulfilment = order["fulfilment"]
    if fulfilment["type"] == "click_and_collect":
        if "store_id" not in fulfilment:
            raise BadRequest("click_and_collect orders need fulfilment.store_id")
        return fulfilment["store_id"]
    if "address" not in fulfilment:
        raise BadRequest("home_delivery orders need fulfilment.address")
    return fulfilment.get("store_id", home_delivery_store)


def digest(order: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(order, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def check_taken(tx: Tx, order: dict[str, Any], taking_store: str, cfg: CentralConfig,
                now: float) -> None:
    """Refuse a click & collect order ``taking_store`` submits for another store unless
    it shows that a shopper stood at its kiosk (see the module docstring)."""
    if order.get("store_id", taking_store) != taking_store:
        raise Forbidden("the order names another store as the one that took it")
    created = float(order["created_at"])
    if created > now + CLOCK_SKEW_S:
        raise BadRequest("created_at is in the future")
    customer = order.get("customer_id")
    if customer is None:
        tx.lock(f"anonymous-orders:{taking_store}")  # count and insert: one step per store
        row = tx.one("SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM orders "
                     "WHERE taken_by = ? AND received_at > ? "
                     "AND customer_id IS NULL AND fulfilment = 'click_and_collect'",
                     (taking_store, now - DAY_S))
        if int(row["n"]) >= cfg.taken_anonymous_orders_per_day:
            raise TooManyRequests(
                f"at most {cfg.taken_anonymous_orders_per_day} anonymous orders a day for "
                "collection in another store",
                retry_after=max(1.0, float(row["oldest"]) + DAY_S - now))
        return
    seen = tx.one("SELECT identified_at FROM customer_stores WHERE customer_id = ? "
                  "AND store_id = ?", (customer, taking_store))
    window = cfg.store_profile_window_days * DAY_S
    if seen is None or (seen["identified_at"] is not None
                        and float(seen["identified_at"]) < created - window):
        raise Forbidden("a store may order for collection in another store only for a "
                        "customer who identified in this store, or anonymously")


def submit(tx: Tx, order: dict[str, Any], store_id: str, submitted_by: str, now: float, *,
           taken_by: str | None = None, check: Callable[[Tx], None] | None = None
           ) -> tuple[str, int, str | None]:
    """Store ``order`` (status ``placed``, logged as its first change); return
    ``("accepted"|"duplicate", seq, pickup_code)`` or raise :class:`Conflict`.

    ``check`` runs only for an order not stored yet (a retry of an accepted order
    is its duplicate whatever the evidence says now)."""
    dig = digest(order)
    existing = tx.one("SELECT seq, digest, pickup_code FROM orders WHERE order_id = ?",
                      (order["order_id"],))
    if existing is None:
        if check is not None:
            check(tx)
        collect = order["fulfilment"]["type"] == "click_and_collect"
        code = None
        if collect and order["channel"] != "kiosk":
            code = f"{secrets.randbelow(10**6):06d}"
        elif collect:
            code = order.get("pickup_code")
        rows = tx.insert_many(
            "orders", ("order_id", "channel", "customer_id", "fulfilment", "store_id", "digest",
                       "payload", "received_at", "submitted_by", "status", "pickup_code",
                       "updated_at", "taken_by"),
            [(order["order_id"], order["channel"], order.get("customer_id"),
              order["fulfilment"]["type"], store_id, dig, json.dumps(order), now,
              submitted_by, "placed", code, now, taken_by)],
            "ON CONFLICT (order_id) DO NOTHING", "seq")
        if rows:
            record_change(tx, order_id=order["order_id"], store_id=store_id, previous=None,
                          status="placed", change_id=f"created:{order['order_id']}",
                          changed_by=submitted_by, actor=None, occurred_at=now, now=now)
            return "accepted", int(rows[0]["seq"]), code
        existing = tx.one("SELECT seq, digest, pickup_code FROM orders WHERE order_id = ?",
                          (order["order_id"],))
    if existing is None or existing["digest"] != dig:
        raise Conflict(f"order {order['order_id']!r} already exists with a different content")
    return "duplicate", int(existing["seq"]), existing["pickup_code"]


def orders_since(tx: Tx, store_id: str, since: int, limit: int) -> list[dict[str, Any]]:
    rows = tx.all("SELECT seq, order_id, received_at, payload, status FROM orders "
                  "WHERE store_id = ? AND seq > ? ORDER BY seq LIMIT ?", (store_id, since, limit))
    return [{"seq": r["seq"], "order_id": r["order_id"], "received_at": r["received_at"],
             "status": r["status"], "order": json.loads(r["payload"])} for r in rows]


@bp.post("/orders")
@require("store", "channel")
def post_order() -> Any:
    order = json_body()
    try:
        _validate_order(order)
    except fastjsonschema.JsonSchemaException as exc:
        raise BadRequest(f"order: {exc.message}") from None
    principal = g.principal
    if principal.kind == "store" and order["channel"] != "kiosk":
        raise Forbidden("a store credential can only submit kiosk orders")
    if principal.kind == "channel" and order["channel"] != principal.name:
        raise Forbidden(f"channel {order['channel']!r} is not the authenticated channel")
    cfg: CentralConfig = current_app.config["CENTRAL"]
    store_id = route(order, cfg.home_delivery_store)
    taken_by: str | None = None
    check: Callable[[Tx], None] | None = None
    if principal.kind == "store" and store_id != principal.name:
        collect = order["fulfilment"]["type"] == "click_and_collect"
        if not collect and store_id != cfg.home_delivery_store:
            raise Forbidden("a store credential can only submit home deliveries from itself "
                            "or from the warehouse")
        if order.get("store_id", principal.name) != principal.name:
            raise Forbidden("the order names another store as the one that took it")
        taken_by = principal.name
        if collect:
            check = functools.partial(check_taken, order=order, taking_store=principal.name,
                                      cfg=cfg, now=time.time())
    db = current_app.extensions["central_db"]
    status, seq, code = db.run(lambda tx: submit(tx, order, store_id, principal.label,
                                                 time.time(), taken_by=taken_by, check=check))
    return jsonify(order_id=order["order_id"], status=status, store_id=store_id, seq=seq,
                   pickup_code=code, taken_by=taken_by), (201 if status == "accepted" else 200)


@bp.get("/stores/<store_id>/orders")
@require("store")
def store_orders(store_id: str) -> Any:
    require_store_scope(store_id)
    since = int_arg("since", 0)
    limit = int_arg("limit", 100, 1, 1000)
    db = current_app.extensions["central_db"]
    items = db.run(lambda tx: orders_since(tx, store_id, since, limit), write=False)
    return jsonify(orders=items, next=items[-1]["seq"] if items else since)
