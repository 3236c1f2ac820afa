"""The single customer view: ``GET /api/v1/customers/<id>``.

This is what a salesperson's tablet shows, so it is built from a handful of
indexed queries (customer, consents, sessions, recent activity, profile
observations, loyalty total) and everything derived (interests, last store
seen, surviving field values) is computed from their rows in Python.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, g, jsonify

from central import consent, identity, interests, loyalty, screen_attribution, survivorship
from central.auth import require, require_store_scope
from central.config import CentralConfig
from central.credentials import Principal
from central.db import Tx
from central.errors import NotFound, TooManyRequests
from central.json_safe import loads_lenient
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
    event carrying both is counted once without a de-duplicating ``UNION``. That
    test is a correlated ``NOT EXISTS`` (a primary-key probe per row), not ``NOT
    IN (subquery)``, which PostgreSQL runs as a linear scan per row once the
    customer's sessions outgrow ``work_mem``.
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
        "AND (session_id IS NULL OR NOT EXISTS (SELECT 1 FROM identity_links l WHERE "
        "l.kind = 'session' AND l.value = events.session_id AND l.customer_id = ?)) "
        "ORDER BY occurred_at DESC, event_id LIMIT ?",
        (customer_id, since, customer_id, since, customer_id, since, customer_id, limit))


def observations(tx: Tx, customer_id: str) -> list[Observation]:
    rows = tx.all("SELECT channel, occurred_at, payload FROM events "
                  "WHERE customer_id = ? AND kind = 'profile'", (customer_id,))
    out = []
    for row in rows:
        payload = loads_lenient(row["payload"])
        fields = payload.get("fields") if isinstance(payload, dict) else None
        for field, value in (fields if isinstance(fields, dict) else {}).items():
            if isinstance(value, str):
                out.append(Observation(field, value, row["channel"], row["occurred_at"]))
    return out


def consents_of(tx: Tx, customer_id: str) -> dict[str, dict[str, Any]]:
    return {r["purpose"]: {"granted": bool(r["granted"]), "source": r["source"],
                           "updated_at": r["updated_at"]}
            for r in tx.all("SELECT purpose, granted, source, updated_at FROM consents "
                            "WHERE customer_id = ? ORDER BY purpose", (customer_id,))}


def loyalty_points(tx: Tx, customer_id: str) -> int:
    """The balance of the customer's loyalty ledger (:mod:`central.loyalty`)."""
    return loyalty.balance(tx, customer_id)


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
        # What the consents mean today, the default included (docs/operations.md).
        "tracking": bool(consent.tracking_allowed(tx, [customer_id],
                                                  cfg.default_tracking_consent)),
        "loyalty_points": loyalty_points(tx, customer_id),
        "last_seen": ({"store_id": seen["store_id"], "zone": seen["zone"],
                       "at": seen["occurred_at"], "channel": seen["channel"]} if seen else None),
        "interests": interests.score(activity, now, cfg.interest_half_life_days),
        "timeline": _with_influences(tx, [_timeline_entry(r)
                                          for r in activity[:cfg.timeline_limit]]),
    }


def _with_influences(tx: Tx, timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each in-store interest gets ``influenced_by``: what its zone's screens had just shown."""
    found = screen_attribution.influences(
        tx, [e["event_id"] for e in timeline if e["kind"] == "interest"])
    for entry in timeline:
        if entry["event_id"] in found:
            entry["influenced_by"] = found[entry["event_id"]]
    return timeline


#: What a store token sees of a customer: what the floor needs to serve them,
#: nothing to contact them with (docs/permissions.md).
SUMMARY_FIELDS = ("customer_id", "name", "loyalty_points", "interests", "last_seen",
                  "timeline")


def store_summary(tx: Tx, customer_id: str, store_id: str, cfg: CentralConfig,
                  now: float | None = None) -> dict[str, Any]:
    """The profile summary a store may read, or :class:`NotFound`.

    Only for a customer who identified in this store within
    ``store_profile_window_days`` and whose tracking consent holds; any other
    customer, existing or not, gets the same 404, so a store token cannot probe
    which ids exist. The summary has the name but no contact data, no consents,
    no identifiers, and only this store's part of the activity.
    """
    now = time.time() if now is None else now
    since = now - cfg.store_profile_window_days * interests.DAY_S
    row = tx.one("SELECT identified_at FROM customer_stores WHERE customer_id = ? "
                 "AND store_id = ? AND identified_at >= ?", (customer_id, store_id, since))
    if row is None or not consent.tracking_allowed(tx, [customer_id],
                                                   cfg.default_tracking_consent):
        raise NotFound(f"no customer {customer_id!r}")
    full = build_profile(tx, customer_id, cfg, now)
    here = [e for e in full["timeline"] if e.get("store_id") == store_id]
    seen = full["last_seen"] if (full["last_seen"] or {}).get("store_id") == store_id else None
    name = full["identity"]["fields"].get("name")
    return {"customer_id": customer_id, "name": name["value"] if name else None,
            "loyalty_points": full["loyalty_points"], "interests": full["interests"],
            "last_seen": seen, "timeline": here}


def check_lookup_rate(principal: Principal, cfg: CentralConfig) -> None:
    """Raise :class:`TooManyRequests` when ``principal`` is over its lookup rate."""
    per_minute = {"store": cfg.store_lookups_per_minute,
                  "channel": cfg.channel_lookups_per_minute}.get(principal.kind)
    if per_minute is None:
        return
    wait = current_app.extensions["central_rate_limiter"].allow(principal.label, per_minute)
    if wait:
        raise TooManyRequests(f"at most {per_minute} customer lookups per minute for "
                              f"{principal.kind} credentials", wait)


def store_points(tx: Tx, customer_id: str, store_id: str, cfg: CentralConfig,
                 now: float | None = None) -> dict[str, Any]:
    """A member's points balance for the store they showed their card in, or NotFound.

    For ``store_points_window_s`` after a presence in that store, with or without
    tracking consent: the balance is what the loyalty contract owes the member, not
    a record of their visits, so the kiosk greets everyone with their points. Any
    other id, existing or not, gets the same 404 (no probing).
    """
    now = time.time() if now is None else now
    row = tx.one("SELECT present_at FROM customer_stores s JOIN customers c ON "
                 "c.customer_id = s.customer_id WHERE s.customer_id = ? AND s.store_id = ? "
                 "AND s.present_at >= ?", (customer_id, store_id,
                                           now - cfg.store_points_window_s))
    if row is None:
        raise NotFound(f"no customer {customer_id!r}")
    return {"customer_id": customer_id, "loyalty_points": loyalty.balance(tx, customer_id)}


@bp.get("/stores/<store_id>/customers/<customer_id>/points")
@require("store")
def get_store_points(store_id: str, customer_id: str) -> Any:
    require_store_scope(store_id)
    cfg = current_app.config["CENTRAL"]
    check_lookup_rate(g.principal, cfg)
    db = current_app.extensions["central_db"]
    return jsonify(db.run(lambda tx: store_points(tx, customer_id, store_id, cfg),
                          write=False))


@bp.get("/customers/<customer_id>")
@require("store", "channel")
def get_profile(customer_id: str) -> Any:
    cfg = current_app.config["CENTRAL"]
    db = current_app.extensions["central_db"]
    principal: Principal = g.principal
    check_lookup_rate(principal, cfg)
    if principal.kind == "store":
        return jsonify(db.run(lambda tx: store_summary(tx, customer_id, principal.name, cfg),
                              write=False))
    return jsonify(db.run(lambda tx: build_profile(tx, customer_id, cfg), write=False))
