"""Consent per customer and purpose, and what withdrawing tracking consent does.

Tracking consent gates the interest/presence events linked to a person: without
it, central keeps those events only in anonymous form (see
:func:`central.event_store.anonymise`). Consent changes are ordered by the time
the customer gave them, so a late-arriving older change cannot overwrite a
newer one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from central.db import Tx
from central.errors import BadRequest
from central.events import CONSENT_PURPOSES, TRACKING_KINDS, Event

_STRIP_IDS = {
    "sqlite": "json_remove(payload, '$.customer_id', '$.session_id', '$.alias')",
    "postgres": "(payload::jsonb - 'customer_id' - 'session_id' - 'alias')::text",
}


def tracking_allowed(tx: Tx, customers: Sequence[str], default: bool) -> set[str]:
    """The subset of ``customers`` whose tracking consent is granted.

    On PostgreSQL the consent rows are read ``FOR SHARE`` so a concurrent
    withdrawal either waits for this batch (and then anonymises it) or commits
    first (and this batch sees it): no identified event slips in after it.
    """
    if not customers:
        return set()
    lock = " FOR SHARE" if tx.dialect == "postgres" else ""
    cond, params = tx.member("customer_id", customers)
    rows = tx.all(f"SELECT customer_id, granted FROM consents WHERE purpose = 'tracking' "
                  f"AND {cond} ORDER BY customer_id{lock}", params)
    known = {r["customer_id"]: bool(r["granted"]) for r in rows}
    return {c for c in customers if known.get(c, default)}


def set_consent(tx: Tx, customer_id: str, purpose: str, granted: bool, source: str,
                at: float) -> bool:
    """Record a consent given at ``at``; False when a newer decision is already stored."""
    tx.execute("INSERT INTO customers (customer_id, created_at) VALUES (?, ?) "
               "ON CONFLICT (customer_id) DO NOTHING", (customer_id, at))
    cur = tx.execute(
        "INSERT INTO consents (customer_id, purpose, granted, source, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (customer_id, purpose) DO UPDATE SET "
        "granted = excluded.granted, source = excluded.source, updated_at = excluded.updated_at "
        "WHERE consents.updated_at <= excluded.updated_at",
        (customer_id, purpose, int(granted), source, at))
    changed = cur.rowcount > 0
    if changed and purpose == "tracking" and not granted:
        anonymise_customer(tx, customer_id)
    return changed


def anonymise_customer(tx: Tx, customer_id: str) -> int:
    """Withdrawal: strip the identity from the customer's tracking events, unlink
    its sessions and aliases (an alias left on old events could be re-linked)."""
    kinds = sorted(TRACKING_KINDS)
    cur = tx.execute(
        f"UPDATE events SET customer_id = NULL, session_id = NULL, alias_key = NULL, "
        f"payload = {_STRIP_IDS[tx.dialect]} WHERE kind IN {tx.in_list(kinds)} AND "
        "(customer_id = ? OR session_id IN (SELECT value FROM identity_links "
        "WHERE kind = 'session' AND customer_id = ?) OR alias_key IN (SELECT value FROM "
        "identity_links WHERE kind = 'alias' AND customer_id = ?))",
        [*kinds, customer_id, customer_id, customer_id])
    tx.execute("DELETE FROM identity_links WHERE customer_id = ?", (customer_id,))
    return cur.rowcount


def apply_consent_events(tx: Tx, events: Sequence[Event], now: float) -> None:
    """Apply consent events of a batch before its tracking events are judged."""
    for ev in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        for purpose, granted in sorted(ev.payload.get("consents", {}).items()):
            set_consent(tx, ev.customer_id or "", purpose, bool(granted), ev.channel,
                        ev.occurred_at)


def consents_of_request(body: object) -> tuple[dict[str, bool], float]:
    """Validate a ``PUT .../consents`` body: ``{"tracking": bool, ..., "at"?: seconds}``."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object of purpose -> bool")
    at = body.get("at", time.time())
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise BadRequest("at must be a number of seconds since the epoch")
    changes = {k: v for k, v in body.items() if k != "at"}
    if not changes:
        raise BadRequest(f"give at least one of {CONSENT_PURPOSES}")
    for purpose, granted in changes.items():
        if purpose not in CONSENT_PURPOSES or not isinstance(granted, bool):
            raise BadRequest(f"{purpose!r}: purposes are {CONSENT_PURPOSES}, values booleans")
    return changes, float(at)
