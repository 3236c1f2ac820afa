"""Privacy: consent updates, erasure (right to be forgotten) and export (right of access).

Erasure deletes the customer, its consents, its session and alias links and
every event linked to it, then records an erasure order. Edges poll
``GET /api/v1/stores/<store>/erasures?since=<seq>`` and delete their local
copies; an edge offline for days catches up from its last seq. Tombstones of
the erased ids make central drop that customer's older events if an edge
forwards them after the erasure. Orders are not erased: they are accounting
records kept under a legal obligation (see docs/operations.md).
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from central import identity
from central.auth import require, require_store_scope
from central.consent import consents_of_request, set_consent
from central.db import Tx
from central.errors import BadRequest
from central.profiles import build_profile
from contract.central_api import API_PREFIX

bp = Blueprint("privacy", __name__, url_prefix=API_PREFIX)

MAX_FEED_PAGE = 1000


def erase(tx: Tx, customer_id: str, requested_by: str, now: float) -> int:
    """Delete everything linked to ``customer_id``; return the erasure order's seq."""
    sessions = identity.sessions_of(tx, customer_id)
    aliases = identity.alias_keys_of(tx, customer_id)
    tx.execute(f"DELETE FROM events WHERE customer_id = ? OR session_id IN "
               f"{tx.in_list(sessions)} OR alias_key IN {tx.in_list(aliases)}",
               [customer_id, *sessions, *aliases])
    for table in ("identity_links", "consents", "customers"):
        tx.execute(f"DELETE FROM {table} WHERE customer_id = ?", (customer_id,))
    tx.insert_many("erased_identities", ("kind", "value", "erased_at"),
                   [("customer", customer_id, now)] + [("session", s, now) for s in sessions]
                   + [("alias", a, now) for a in aliases],
                   "ON CONFLICT (kind, value) DO UPDATE SET erased_at = excluded.erased_at")
    row = tx.one("INSERT INTO erasures (customer_id, session_ids, alias_keys, erased_at, "
                 "requested_by) VALUES (?, ?, ?, ?, ?) RETURNING seq",
                 (customer_id, json.dumps(sessions), json.dumps(aliases), now, requested_by))
    return int(row["seq"])


def export(tx: Tx, customer_id: str, cfg: Any) -> dict[str, Any]:
    """Everything central holds about the customer, as one JSON document."""
    profile = build_profile(tx, customer_id, cfg)
    sessions = profile["identity"]["sessions"]
    aliases = identity.alias_keys_of(tx, customer_id)
    events = tx.all(f"SELECT event_id, kind, channel, store_id, occurred_at, payload FROM events "
                    f"WHERE customer_id = ? OR session_id IN {tx.in_list(sessions)} "
                    f"OR alias_key IN {tx.in_list(aliases)} ORDER BY occurred_at, event_id",
                    [customer_id, *sessions, *aliases])
    orders = tx.all("SELECT order_id, store_id, received_at, payload FROM orders "
                    "WHERE customer_id = ? ORDER BY seq", (customer_id,))
    return {
        "exported_at": time.time(),
        "profile": profile,
        "events": [{**{k: r[k] for k in ("event_id", "kind", "channel", "store_id",
                                         "occurred_at")}, "payload": json.loads(r["payload"])}
                   for r in events],
        "orders": [{"order_id": r["order_id"], "store_id": r["store_id"],
                    "received_at": r["received_at"], "order": json.loads(r["payload"])}
                   for r in orders],
    }


def erasures_since(tx: Tx, since: int, limit: int) -> list[dict[str, Any]]:
    """Erasure orders for the edges; ``aliases`` lets a kiosk drop a locally kept alias."""
    rows = tx.all("SELECT seq, customer_id, session_ids, alias_keys, erased_at FROM erasures "
                  "WHERE seq > ? ORDER BY seq LIMIT ?", (since, limit))
    return [{"seq": r["seq"], "customer_id": r["customer_id"],
             "session_ids": json.loads(r["session_ids"]),
             "aliases": [identity.alias_of_key(k) for k in json.loads(r["alias_keys"] or "[]")],
             "erased_at": r["erased_at"]}
            for r in rows]


def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None


@bp.put("/customers/<customer_id>/consents")
@require("channel")
def put_consents(customer_id: str) -> Any:
    changes, at = consents_of_request(request.get_json(silent=True))
    db = current_app.extensions["central_db"]

    def apply(tx: Tx) -> dict[str, bool]:
        return {purpose: set_consent(tx, customer_id, purpose, granted, g.principal.name, at)
                for purpose, granted in changes.items()}

    return jsonify(customer_id=customer_id, applied=db.run(apply))


@bp.delete("/customers/<customer_id>")
@require("channel")
def delete_customer(customer_id: str) -> Any:
    db = current_app.extensions["central_db"]
    seq = db.run(lambda tx: erase(tx, customer_id, g.principal.label, time.time()))
    return jsonify(customer_id=customer_id, erasure_seq=seq), 202


@bp.get("/customers/<customer_id>/export")
@require("channel")
def export_customer(customer_id: str) -> Any:
    cfg = current_app.config["CENTRAL"]
    db = current_app.extensions["central_db"]
    return jsonify(db.run(lambda tx: export(tx, customer_id, cfg), write=False))


@bp.get("/stores/<store_id>/erasures")
@require("store")
def store_erasures(store_id: str) -> Any:
    require_store_scope(store_id)
    since = _int_arg("since", 0)
    limit = min(max(_int_arg("limit", MAX_FEED_PAGE), 1), MAX_FEED_PAGE)
    db = current_app.extensions["central_db"]
    items = db.run(lambda tx: erasures_since(tx, since, limit), write=False)
    return jsonify(erasures=items, next=items[-1]["seq"] if items else since)



