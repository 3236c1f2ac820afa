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

from flask import Blueprint, current_app, g, jsonify

from central import identity, screen_attribution
from central.auth import require, require_store_scope
from central.consent import consents_of_request, set_consent
from central.db import Tx
from central.json_safe import loads_lenient
from central.profiles import build_profile
from central.request_input import int_arg, json_body
from contract.central_api import API_PREFIX

bp = Blueprint("privacy", __name__, url_prefix=API_PREFIX)

MAX_FEED_PAGE = 1000

#: Rows fetched per round trip when exporting.
EXPORT_BATCH = 5000


def _holders(tx: Tx, customer_id: str) -> dict[str, tuple[set[str], set[str]]]:
    """Stores that may hold a local copy of the customer, with the sessions and aliases
    each saw: where it identified (``customer_stores``), where its linked events came
    from, and which stores fulfil its orders."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for row in tx.all("SELECT store_id FROM customer_stores WHERE customer_id = ? UNION "
                      "SELECT store_id FROM orders WHERE customer_id = ?",
                      (customer_id, customer_id)):
        out.setdefault(row["store_id"], (set(), set()))
    for branch in identity.LINKED_EVENTS:
        for row in tx.all("SELECT DISTINCT store_id, session_id, alias_key FROM events WHERE "
                          f"store_id IS NOT NULL AND source LIKE ? AND {branch}",
                          ("store:%", customer_id)):
            sessions, aliases = out.setdefault(row["store_id"], (set(), set()))
            if row["session_id"]:
                sessions.add(row["session_id"])
            if row["alias_key"]:
                aliases.add(row["alias_key"])
    return out


def erase(tx: Tx, customer_id: str, requested_by: str, now: float) -> int:
    """Delete everything linked to ``customer_id``; return the erasure order's seq.

    The erasure order goes only to the stores that may hold a copy (see
    :func:`_holders`), each with only the sessions and aliases it saw.
    """
    sessions = identity.sessions_of(tx, customer_id)
    aliases = identity.alias_keys_of(tx, customer_id)
    holders = _holders(tx, customer_id)
    for branch in identity.LINKED_EVENTS:
        screen_attribution.forget_events(tx, branch, (customer_id,))
        tx.execute(f"DELETE FROM events WHERE {branch}", (customer_id,))
    for table in ("identity_links", "consents", "loyalty_ledger", "customer_stores",
                  "customers"):
        tx.execute(f"DELETE FROM {table} WHERE customer_id = ?", (customer_id,))
    tx.insert_many("erased_identities", ("kind", "value", "erased_at"),
                   [("customer", customer_id, now)] + [("session", s, now) for s in sessions]
                   + [("alias", a, now) for a in aliases],
                   "ON CONFLICT (kind, value) DO UPDATE SET erased_at = excluded.erased_at")
    row = tx.one("INSERT INTO erasures (customer_id, session_ids, alias_keys, erased_at, "
                 "requested_by) VALUES (?, ?, ?, ?, ?) RETURNING seq",
                 (customer_id, json.dumps(sessions), json.dumps(aliases), now, requested_by))
    seq = int(row["seq"])
    tx.insert_many("erasure_stores", ("seq", "store_id", "session_ids", "alias_keys"),
                   [(seq, store, json.dumps(sorted(s)), json.dumps(sorted(a)))
                    for store, (s, a) in sorted(holders.items())])
    return seq


def _batched(tx: Tx, sql: str, params: list[Any], key: str) -> list[Any]:
    """All rows of ``sql ... AND <key> > ? ORDER BY <key> LIMIT ?``, one batch at a time."""
    out: list[Any] = []
    after: Any = ""
    while True:
        rows = tx.all(f"{sql} AND {key} > ? ORDER BY {key} LIMIT ?",
                      [*params, after, EXPORT_BATCH])
        out.extend(rows)
        if len(rows) < EXPORT_BATCH:
            return out
        after = rows[-1][key]


def export(tx: Tx, customer_id: str, cfg: Any) -> dict[str, Any]:
    """Everything central holds about the customer, as one JSON document.

    Read in batches of :data:`EXPORT_BATCH` rows by key, so the size of the
    customer's history bounds nothing but the document itself; payloads stored
    before ``NaN`` was refused come out with ``null`` in its place.
    """
    profile = build_profile(tx, customer_id, cfg)
    found: dict[str, Any] = {}
    for branch in identity.LINKED_EVENTS:
        for row in _batched(tx, "SELECT event_id, kind, channel, store_id, occurred_at, "
                                f"payload FROM events WHERE {branch}", [customer_id],
                            "event_id"):
            found[row["event_id"]] = row
    events = sorted(found.values(), key=lambda r: (r["occurred_at"], r["event_id"]))
    orders = tx.all("SELECT order_id, store_id, received_at, payload, status FROM orders "
                    "WHERE customer_id = ? ORDER BY seq", (customer_id,))
    ledger = tx.all("SELECT points, ref_kind, ref_id, direction, source, event_id, "
                    "occurred_at, recorded_at FROM loyalty_ledger WHERE customer_id = ? "
                    "ORDER BY entry_id", (customer_id,))
    stores = tx.all("SELECT store_id, identified_at FROM customer_stores "
                    "WHERE customer_id = ? ORDER BY store_id", (customer_id,))
    return {
        "exported_at": time.time(),
        "profile": profile,
        "events": [{**{k: r[k] for k in ("event_id", "kind", "channel", "store_id",
                                         "occurred_at")},
                    "payload": loads_lenient(r["payload"])} for r in events],
        "orders": [{"order_id": r["order_id"], "store_id": r["store_id"],
                    "received_at": r["received_at"], "status": r["status"],
                    "order": loads_lenient(r["payload"])}
                   for r in orders],
        "loyalty_ledger": [dict(r) for r in ledger],
        "stores": [dict(r) for r in stores],
    }


def erasures_since(tx: Tx, store_id: str, since: int, limit: int) -> list[dict[str, Any]]:
    """Erasure orders for ``store_id``'s edge: only customers it may hold, with only the
    sessions and aliases it saw (``aliases`` lets a kiosk drop a locally kept alias)."""
    rows = tx.all("SELECT s.seq, e.customer_id, s.session_ids, s.alias_keys, e.erased_at "
                  "FROM erasure_stores s JOIN erasures e ON e.seq = s.seq "
                  "WHERE s.store_id = ? AND s.seq > ? ORDER BY s.seq LIMIT ?",
                  (store_id, since, limit))
    return [{"seq": r["seq"], "customer_id": r["customer_id"],
             "session_ids": json.loads(r["session_ids"]),
             "aliases": [identity.alias_of_key(k) for k in json.loads(r["alias_keys"] or "[]")],
             "erased_at": r["erased_at"]}
            for r in rows]


@bp.put("/customers/<customer_id>/consents")
@require("channel")
def put_consents(customer_id: str) -> Any:
    cfg = current_app.config["CENTRAL"]
    now = time.time()
    changes, at = consents_of_request(json_body(), now, cfg.consent_clock_skew_s)
    db = current_app.extensions["central_db"]

    def apply(tx: Tx) -> dict[str, bool]:
        return {purpose: set_consent(tx, customer_id, purpose, granted, g.principal.name, at,
                                     now)
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
    since = int_arg("since", 0)
    limit = int_arg("limit", MAX_FEED_PAGE, 1, MAX_FEED_PAGE)
    db = current_app.extensions["central_db"]
    items = db.run(lambda tx: erasures_since(tx, store_id, since, limit), write=False)
    return jsonify(erasures=items, next=items[-1]["seq"] if items else since)
