"""The single customer view: ``GET /api/v1/customers/<id>``.

This is what a salesperson's tablet shows, so it is built from a handful of
indexed queries (customer, consents, sessions, recent activity, profile
observations, loyalty total) and everything derived (interests, last store
seen, surviving field values) is computed from their rows in Python.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Blueprint, current_app, jsonify

from central import identity, interests, survivorship
from central.auth import require
from central.config import CentralConfig
from central.db import Tx
from central.errors import NotFound
from central.survivorship import Observation
from contract.central_api import API_PREFIX

bp = Blueprint("profiles", __name__, url_prefix=API_PREFIX)

#: Most events read to score interests; a customer beyond this is scored on the latest.
MAX_SCORED_EVENTS = 2000
_ACTIVITY_COLUMNS = "event_id, kind, channel, store_id, zone, gtin, category, points, occurred_at"


def recent_activity(tx: Tx, customer_id: str, since: float, limit: int) -> list[Any]:
    """Events of the customer and of the anonymous sessions and aliases linked to it.

    Newest first. One indexed branch per identifier kind; the alias branch
    leaves out events already found through their (linked) session, so an
    event carrying both is counted once without a de-duplicating ``UNION``.
    """
    linked = "SELECT value FROM identity_links WHERE kind = '{}' AND customer_id = ?"
    # SQLite without ANALYZE statistics prefers events_customer for "customer_id IS
    # NULL" (every anonymous event in the window); unary + keeps it on the selective
    # session/alias index. PostgreSQL plans from its statistics and has no unary + on text.
    anon = "+customer_id IS NULL" if tx.dialect == "sqlite" else "customer_id IS NULL"
    return tx.all(
        f"SELECT {_ACTIVITY_COLUMNS} FROM events WHERE customer_id = ? AND occurred_at >= ? "
        f"UNION ALL SELECT {_ACTIVITY_COLUMNS} FROM events WHERE {anon} "
        f"AND session_id IN ({linked.format('session')}) AND occurred_at >= ? "
        f"UNION ALL SELECT {_ACTIVITY_COLUMNS} FROM events WHERE {anon} "
        f"AND alias_key IN ({linked.format('alias')}) AND occurred_at >= ? "
        f"AND (session_id IS NULL OR session_id NOT IN ({linked.format('session')})) "
        "ORDER BY occurred_at DESC, event_id LIMIT ?",
        (customer_id, since, customer_id, since, customer_id, since, customer_id, limit))


def observations(tx: Tx, customer_id: str) -> list[Observation]:
    rows = tx.all("SELECT channel, occurred_at, payload FROM events "
                  "WHERE customer_id = ? AND kind = 'profile'", (customer_id,))
    out = []
    for row in rows:
        for field, value in json.loads(row["payload"]).get("fields", {}).items():
            if isinstance(value, str):
                out.append(Observation(field, value, row["channel"], row["occurred_at"]))
    return out


def consents_of(tx: Tx, customer_id: str) -> dict[str, dict[str, Any]]:
    return {r["purpose"]: {"granted": bool(r["granted"]), "source": r["source"],
                           "updated_at": r["updated_at"]}
            for r in tx.all("SELECT purpose, granted, source, updated_at FROM consents "
                            "WHERE customer_id = ? ORDER BY purpose", (customer_id,))}


def loyalty_points(tx: Tx, customer_id: str) -> int:
    row = tx.one("SELECT COALESCE(SUM(points), 0) AS total FROM events "
                 "WHERE customer_id = ? AND kind = 'loyalty'", (customer_id,))
    return int(row["total"]) if row else 0


def _timeline_entry(row: Any) -> dict[str, Any]:
    entry = {k: row[k] for k in ("event_id", "kind", "channel", "occurred_at")}
    for key in ("store_id", "zone", "gtin", "category", "points"):
        if row[key] is not None:
            entry[key] = row[key]
    return entry


def build_profile(tx: Tx, customer_id: str, cfg: CentralConfig, now: float | None = None
                  ) -> dict[str, Any]:
    """The profile document; :class:`NotFound` for an unknown (or erased) customer."""
    now = time.time() if now is None else now
    if tx.one("SELECT 1 AS x FROM customers WHERE customer_id = ?", (customer_id,)) is None:
        raise NotFound(f"no customer {customer_id!r}")
    since = now - cfg.interest_window_days * interests.DAY_S
    activity = recent_activity(tx, customer_id, since, MAX_SCORED_EVENTS)
    seen = next((r for r in activity if r["store_id"] and r["kind"] in ("presence", "interest")),
                None)
    return {
        "customer_id": customer_id,
        "identity": {
            "customer_id": customer_id,
            "sessions": identity.sessions_of(tx, customer_id),
            "aliases": identity.aliases_of(tx, customer_id),
            "fields": survivorship.resolve(observations(tx, customer_id), cfg.survivorship),
        },
        "consents": consents_of(tx, customer_id),
        "loyalty_points": loyalty_points(tx, customer_id),
        "last_seen": ({"store_id": seen["store_id"], "zone": seen["zone"],
                       "at": seen["occurred_at"], "channel": seen["channel"]} if seen else None),
        "interests": interests.score(activity, now, cfg.interest_half_life_days),
        "timeline": [_timeline_entry(r) for r in activity[:cfg.timeline_limit]],
    }


@bp.get("/customers/<customer_id>")
@require("store", "channel")
def get_profile(customer_id: str) -> Any:
    cfg = current_app.config["CENTRAL"]
    db = current_app.extensions["central_db"]
    return jsonify(db.run(lambda tx: build_profile(tx, customer_id, cfg), write=False))
