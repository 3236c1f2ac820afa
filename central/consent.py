"""Consent per customer and purpose, and what withdrawing tracking consent does.

Tracking consent gates the interest/presence events linked to a person: without
it, central keeps those events only in anonymous form (see
:func:`central.event_store.anonymise`). Consent changes are ordered by the time
the customer gave them, so a late-arriving older change cannot overwrite a
newer one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from central.db import Tx
from central.errors import BadRequest
from central.events import CONSENT_PURPOSES, CONSENT_SKEW_S, MIN_TS, TRACKING_KINDS, Event
from central.identity import LINKED_EVENTS
from central.json_safe import dumps_finite, loads_lenient

#: Payload keys that identify a person or could be linked to one later.
IDENTIFYING_KEYS = ("customer_id", "session_id", "alias")


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


#: A grant from the in-store kiosk cannot undo a withdrawal the customer made through
#: their own channels (web, app, call centre, CRM): only those can grant it back.
SHARED_SOURCES = ("kiosk",)


def set_consent(tx: Tx, customer_id: str, purpose: str, granted: bool, source: str,
                at: float, now: float | None = None) -> bool:
    """Record a consent given at ``at``; False when a newer decision is already stored.

    Decisions are ordered by when the customer made them, with three guards so a
    withdrawal always wins: ``at`` is never later than ``now`` (a decision dated
    ahead, within the allowed clock skew, counts as made now, so it cannot outrank
    a withdrawal made a moment later); on a tie the withdrawal wins; and a stored
    decision dated in the future (written before these guards) never blocks a
    withdrawal. A kiosk grant does not undo a withdrawal from another channel.
    """
    now = time.time() if now is None else now
    at = min(at, now)
    tx.execute("INSERT INTO customers (customer_id, created_at) VALUES (?, ?) "
               "ON CONFLICT (customer_id) DO NOTHING", (customer_id, at))
    shared = tx.in_list(SHARED_SOURCES)
    cur = tx.execute(
        "INSERT INTO consents (customer_id, purpose, granted, source, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (customer_id, purpose) DO UPDATE SET "
        "granted = excluded.granted, source = excluded.source, updated_at = excluded.updated_at "
        "WHERE (consents.updated_at < excluded.updated_at AND NOT (excluded.granted = 1 "
        f"AND consents.granted = 0 AND excluded.source IN {shared} "
        f"AND consents.source NOT IN {shared})) OR (excluded.granted = 0 AND "
        "(consents.updated_at = excluded.updated_at OR consents.updated_at > ?))",
        (customer_id, purpose, int(granted), source, at, *SHARED_SOURCES, *SHARED_SOURCES,
         now))
    changed = cur.rowcount > 0
    if changed and purpose == "tracking" and not granted:
        anonymise_customer(tx, customer_id)
    return changed


#: Events rewritten per statement when a withdrawal anonymises a customer's history.
ANONYMISE_BATCH = 1000


def strip_identity(payload: str) -> str:
    """``payload`` without its identifying keys, as strict JSON.

    Parsed in Python, which reads whatever an older version stored (``NaN``
    included, which the engines' JSON functions refuse); non-finite numbers
    become ``null`` on the way out.
    """
    doc = loads_lenient(payload)
    if not isinstance(doc, dict):
        return "{}"
    return dumps_finite({k: v for k, v in doc.items() if k not in IDENTIFYING_KEYS})


def anonymise_customer(tx: Tx, customer_id: str) -> int:
    """Withdrawal: strip the identity from the customer's tracking events, unlink
    its sessions and aliases (an alias left on old events could be re-linked).

    Works in batches of :data:`ANONYMISE_BATCH` events, one branch of
    :data:`central.identity.LINKED_EVENTS` at a time, so a customer with any
    number of sessions needs no statement with more than a handful of parameters.
    """
    kinds = sorted(TRACKING_KINDS)
    total = 0
    for branch in LINKED_EVENTS:
        select = (f"SELECT event_id, payload FROM events WHERE kind IN {tx.in_list(kinds)} "
                  f"AND {branch} LIMIT ?")
        while True:
            rows = tx.all(select, [*kinds, customer_id, ANONYMISE_BATCH])
            if not rows:
                break
            tx.execute_many("UPDATE events SET customer_id = NULL, session_id = NULL, "
                            "alias_key = NULL, payload = ? WHERE event_id = ?",
                            [(strip_identity(r["payload"]), r["event_id"]) for r in rows])
            total += len(rows)
    tx.execute("DELETE FROM identity_links WHERE customer_id = ?", (customer_id,))
    tx.execute("UPDATE customer_stores SET identified_at = NULL WHERE customer_id = ?",
               (customer_id,))
    return total


def apply_consent_events(tx: Tx, events: Sequence[Event], now: float) -> None:
    """Apply consent events of a batch before its tracking events are judged."""
    for ev in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        for purpose, granted in sorted(ev.payload.get("consents", {}).items()):
            set_consent(tx, ev.customer_id or "", purpose, bool(granted), ev.channel,
                        ev.occurred_at, now)


def consents_of_request(body: object, now: float, skew: float = CONSENT_SKEW_S
                        ) -> tuple[dict[str, bool], float]:
    """Validate a ``PUT .../consents`` body: ``{"tracking": bool, ..., "at"?: seconds}``."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object of purpose -> bool")
    at = body.get("at", now)
    if (isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at)
            or at < MIN_TS):
        raise BadRequest("at must be a finite number of seconds since the epoch")
    if at > now + skew:
        raise BadRequest(f"at is {at - now:.0f} s in the future (at most {skew:.0f} s of "
                         "clock skew)")
    changes = {k: v for k, v in body.items() if k != "at"}
    if not changes:
        raise BadRequest(f"give at least one of {CONSENT_PURPOSES}")
    for purpose, granted in changes.items():
        if purpose not in CONSENT_PURPOSES or not isinstance(granted, bool):
            raise BadRequest(f"{str(purpose)[:40]!r}: purposes are {CONSENT_PURPOSES}, "
                             "values booleans")
    return changes, float(at)
