"""An order's lifecycle at central: who may move it, the log of every change, the store feed.

The states and the moves between them are :mod:`contract.order_lifecycle` (the
edge checks the same table). ``POST /api/v1/orders/<id>/status`` with
``{"status", "change_id", "occurred_at"?, "actor"?}`` moves an order:

- 201 ``changed``: the move is allowed, the order row and a new ``order_changes``
  row are written in one transaction (the row says who: the credential's label,
  plus the ``actor`` it names, e.g. the panel user or the kiosk; and when: the
  source's ``occurred_at`` and central's ``recorded_at``);
- 200 ``duplicate``: this ``change_id`` was recorded already (a retry; whatever
  happened since), or 200 ``unchanged``: the order is already in that status;
- 409 with the reason: a move the lifecycle refuses (``cancelled -> ready``), or a
  ``change_id`` reused for another change; 404: no such order *for this caller*.

Who: a store credential moves only orders it fulfils (any allowed move: it takes
payments at its kiosks and counters, prepares, hands over, cancels an order
nobody collected); a channel credential only orders of its own channel, and only
to ``paid`` or ``cancelled`` (the web shop takes payments and cancellations; the
floor work is the store's); the admin anything. Another store's or channel's
order is a 404, the same answer as an unknown id: no probing.

Every change lands in one log per fulfilling store, the order's creation
included: ``GET /api/v1/stores/<store>/order-changes?since=<seq>`` is what an edge
pulls (``edge/order_feed.py``), nudged by ``central/order_push.py``. Each item
carries the order itself, so an edge that missed the creation can still apply a
later change.
"""

from __future__ import annotations

import json
import time
from typing import Any

import fastjsonschema
from flask import Blueprint, current_app, g, jsonify

from central.auth import require, require_store_scope
from central.db import Tx
from central.errors import BadRequest, Conflict, NotFound
from central.request_input import int_arg, json_body
from contract.central_api import API_PREFIX
from contract.order_lifecycle import STATUSES, TransitionError, check_move

bp = Blueprint("order_status", __name__, url_prefix=API_PREFIX)

#: What a channel may do to its own orders; stores and the admin may make any allowed move.
CHANNEL_MOVES = ("paid", "cancelled")
#: How far ahead of central's clock a source's ``occurred_at`` may be.
CLOCK_SKEW_S = 300.0
MAX_CHANGES_PAGE = 500

STATUS_CHANGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "change_id"],
    "additionalProperties": False,
    "properties": {
        "status": {"enum": list(STATUSES)},
        "change_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "occurred_at": {"type": "number", "minimum": 0, "maximum": 1e11},
        "actor": {"type": "string", "minLength": 1, "maxLength": 64,
                  "pattern": "^[^\\x00-\\x1f\\x7f]+$"},
    },
}
_validate_change = fastjsonschema.compile(STATUS_CHANGE_SCHEMA)


def record_change(tx: Tx, *, order_id: str, store_id: str, previous: str | None, status: str,
                  change_id: str, changed_by: str, actor: str | None, occurred_at: float,
                  now: float) -> int:
    """Append one change to the store's order log (inside the caller's transaction)."""
    row = tx.one("INSERT INTO order_changes (change_id, order_id, store_id, previous, status, "
                 "changed_by, actor, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                 "RETURNING seq", (change_id, order_id, store_id, previous, status, changed_by,
                                   actor, occurred_at, now))
    return int(row["seq"])


def _visible_order(tx: Tx, order_id: str, lock: bool = False) -> Any:
    """The order if the caller may see it, else :class:`NotFound` (same for unknown)."""
    lock_sql = " FOR UPDATE" if lock and tx.dialect == "postgres" else ""
    row = tx.one("SELECT order_id, channel, store_id, status, customer_id, payload, "
                 "pickup_code, received_at, updated_at FROM orders WHERE order_id = ?"
                 + lock_sql, (order_id,))
    principal = g.principal
    if row is None or (principal.kind == "store" and row["store_id"] != principal.name) or (
            principal.kind == "channel" and row["channel"] != principal.name):
        raise NotFound(f"no order {order_id!r} for this credential")
    return row


def change_status(tx: Tx, order_id: str, change: dict[str, Any], now: float
                  ) -> tuple[str, dict[str, Any]]:
    """Apply one requested change; ``(result, body)`` or raise (see the module docstring)."""
    principal = g.principal
    done = tx.one("SELECT seq, order_id, status, previous FROM order_changes "
                  "WHERE change_id = ?", (change["change_id"],))
    if done is not None:
        if done["order_id"] != order_id or done["status"] != change["status"]:
            raise Conflict(f"change_id {change['change_id']!r} was used for another change")
        _visible_order(tx, order_id)
        return "duplicate", {"seq": int(done["seq"]), "previous": done["previous"]}
    order = _visible_order(tx, order_id, lock=True)
    target = change["status"]
    if principal.kind == "channel" and target not in CHANNEL_MOVES:
        raise Conflict(f"a channel may only mark its orders {' or '.join(CHANNEL_MOVES)}; "
                       f"{target} is the fulfilling store's to record")
    try:
        moved = check_move(order["status"], target)
    except TransitionError as exc:
        raise Conflict(str(exc)) from None
    if not moved:
        return "unchanged", {"seq": None, "previous": order["status"]}
    occurred = min(float(change.get("occurred_at", now)), now + CLOCK_SKEW_S)
    tx.execute("UPDATE orders SET status = ?, updated_at = ? WHERE order_id = ?",
               (target, now, order_id))
    seq = record_change(tx, order_id=order_id, store_id=order["store_id"],
                        previous=order["status"], status=target,
                        change_id=change["change_id"], changed_by=principal.label,
                        actor=change.get("actor"), occurred_at=occurred, now=now)
    return "changed", {"seq": seq, "previous": order["status"]}


def _history(tx: Tx, order_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in tx.all(
        "SELECT seq, previous, status, changed_by, actor, occurred_at, recorded_at "
        "FROM order_changes WHERE order_id = ? ORDER BY seq", (order_id,))]


def changes_since(tx: Tx, store_id: str, since: int, limit: int) -> list[dict[str, Any]]:
    """The store's order log after ``since``, each change with its order."""
    rows = tx.all(
        "SELECT c.seq, c.order_id, c.previous, c.status, c.changed_by, c.actor, "
        "c.occurred_at, c.recorded_at, o.channel, o.customer_id, o.payload, o.pickup_code "
        "FROM order_changes c JOIN orders o ON o.order_id = c.order_id "
        "WHERE c.store_id = ? AND c.seq > ? ORDER BY c.seq LIMIT ?", (store_id, since, limit))
    return [{"seq": int(r["seq"]), "order_id": r["order_id"], "previous": r["previous"],
             "status": r["status"], "changed_by": r["changed_by"], "actor": r["actor"],
             "occurred_at": r["occurred_at"], "recorded_at": r["recorded_at"],
             "channel": r["channel"], "pickup_code": r["pickup_code"],
             "order": json.loads(r["payload"])} for r in rows]


@bp.post("/orders/<order_id>/status")
@require("store", "channel")
def post_status(order_id: str) -> Any:
    change = json_body()
    try:
        _validate_change(change)
    except fastjsonschema.JsonSchemaException as exc:
        raise BadRequest(f"status change: {exc.message}") from None
    db = current_app.extensions["central_db"]
    result, body = db.run(lambda tx: change_status(tx, order_id, change, time.time()))
    return jsonify(order_id=order_id, result=result, status=change["status"], **body), (
        201 if result == "changed" else 200)


@bp.get("/orders/<order_id>")
@require("store", "channel")
def get_order(order_id: str) -> Any:
    db = current_app.extensions["central_db"]

    def read(tx: Tx) -> dict[str, Any]:
        row = _visible_order(tx, order_id)
        return {"order_id": row["order_id"], "channel": row["channel"],
                "store_id": row["store_id"], "status": row["status"],
                "pickup_code": row["pickup_code"], "received_at": row["received_at"],
                "updated_at": row["updated_at"], "order": json.loads(row["payload"]),
                "history": _history(tx, order_id)}

    return jsonify(db.run(read, write=False))


@bp.get("/stores/<store_id>/order-changes")
@require("store")
def store_order_changes(store_id: str) -> Any:
    require_store_scope(store_id)
    since = int_arg("since", 0)
    limit = int_arg("limit", 100, 1, MAX_CHANGES_PAGE)
    db = current_app.extensions["central_db"]
    items = db.run(lambda tx: changes_since(tx, store_id, since, limit), write=False)
    return jsonify(changes=items, next=items[-1]["seq"] if items else since)
