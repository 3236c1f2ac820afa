"""Write path of ingest: one transaction per batch, idempotent on ``event_id``.

The batch is stored with one multi-row ``INSERT ... ON CONFLICT (event_id) DO
NOTHING RETURNING event_id``: the ids returned are the events new to central,
the others were already there (a replay, or another worker that won the race).
Rows are inserted sorted by id so two workers inserting overlapping batches
take their locks in the same order and cannot deadlock. Identity is resolved
at read time through ``identity_links`` (see :mod:`central.identity`), so the
write path never rewrites earlier events and concurrent batches cannot
interleave badly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from central import consent, identity, loyalty, screen_attribution
from central.credentials import Principal
from central.db import Tx
from central.errors import EventRejected
from central.events import Event
from central.loyalty import LoyaltyLimits

_EVENT_COLUMNS = ("event_id", "kind", "channel", "source", "store_id", "zone", "customer_id",
                  "session_id", "gtin", "category", "points", "occurred_at", "ingested_at",
                  "payload", "alias_key")


@dataclass
class BatchResult:
    """Outcome per event id; ``duplicate`` includes events of identities erased since."""

    accepted: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    #: ``{"event_id", "reason"}`` of events refused by a rule that needs the database
    #: (a loyalty limit); the parser's rejections never get this far.
    rejected: list[dict[str, str]] = field(default_factory=list)


def anonymise(event: Event) -> Event:
    """The anonymous form kept of a tracking event whose customer did not consent.

    What remains (store, zone, product, time) feeds footfall and product
    statistics but cannot be linked back to a person: the customer id, the
    session id and the device alias (both could be linked later) are dropped.
    """
    payload = {k: v for k, v in event.payload.items() if k not in consent.IDENTIFYING_KEYS}
    return replace(event, customer_id=None, session_id=None, alias_key=None, payload=payload)


def shows_presence(event: Event) -> bool:
    """A tracking event, or consent given or withdrawn at a store's kiosk: the
    customer identified at that kiosk to decide (edge/kiosk_service.py)."""
    return event.tracking or (event.kind == "consent" and event.channel == "kiosk")


def remember_stores(tx: Tx, events: Sequence[Event], consenting: set[str]) -> None:
    """Record which stores each customer identified in (see ``customer_stores``).

    ``identified_at`` (what scopes a store's profile lookups) is kept only for
    customers with tracking consent; without it only the bare membership is
    kept (no time), so that an erasure still reaches every store that may hold
    a local copy. Consent granted at a kiosk counts as identifying there: the
    shopper who just allowed it sees their history without tapping again.
    """
    seen: dict[tuple[str, str], float | None] = {}
    present: dict[tuple[str, str], float | None] = {}
    for e in events:
        if not (shows_presence(e) and e.customer_id and e.store_id):
            continue
        key = (e.customer_id, e.store_id)
        last = seen.get(key)
        if e.customer_id in consenting and (last is None or e.occurred_at > last):
            last = e.occurred_at
        seen[key] = last
        shown = present.get(key)
        if e.kind == "presence" and (shown is None or e.occurred_at > shown):
            present[key] = e.occurred_at  # the card shown, whatever the consent
        else:
            present[key] = shown
    tx.insert_many(
        "customer_stores", ("customer_id", "store_id", "identified_at", "present_at"),
        [(c, st, last, present[(c, st)]) for (c, st), last in sorted(seen.items())],
        "ON CONFLICT (customer_id, store_id) DO UPDATE SET identified_at = CASE WHEN "
        "customer_stores.identified_at IS NULL OR excluded.identified_at > "
        "customer_stores.identified_at THEN excluded.identified_at "
        "ELSE customer_stores.identified_at END, present_at = CASE WHEN "
        "customer_stores.present_at IS NULL OR excluded.present_at > "
        "customer_stores.present_at THEN excluded.present_at "
        "ELSE customer_stores.present_at END")


def store_batch(tx: Tx, events: Sequence[Event], sender: Principal, default_consent: bool,
                now: float | None = None, limits: LoyaltyLimits | None = None,
                present_window_s: float = 3600.0,
                attribution_window_s: float = 30.0) -> BatchResult:
    """Store ``events`` (already validated) as sent by ``sender``; see module docstring.

    ``present_window_s``: how long after a card shown in a store that store's kiosk may
    record the customer's consent decision (:func:`_kiosk_consent_scope`). New
    proof-of-play and interest events are matched with each other
    (:mod:`central.screen_attribution`, window ``attribution_window_s``).
    """
    now = time.time() if now is None else now
    limits = limits or LoyaltyLimits()
    source = sender.label
    result = BatchResult()
    unique: dict[str, Event] = {}
    for ev in events:
        if ev.event_id in unique:
            result.duplicate.append(ev.event_id)
        else:
            unique[ev.event_id] = ev
    batch = [unique[k] for k in sorted(unique)]

    erased = identity.erased_before(tx, batch)
    kept = []
    for ev in batch:
        if ev.event_id in erased:
            result.duplicate.append(ev.event_id)
        else:
            kept.append(ev)
    kept = _ledger(tx, kept, sender, limits, now, result)
    kept = _kiosk_consent_scope(tx, kept, sender, present_window_s, result)

    consent.apply_consent_events(tx, [e for e in kept if e.kind == "consent"], now)
    tracked_customers = sorted({e.customer_id for e in kept
                                if shows_presence(e) and e.customer_id})
    consenting = consent.tracking_allowed(tx, tracked_customers, default_consent)
    if sender.kind in ("store", "admin"):
        remember_stores(tx, kept, consenting)
    stored = [anonymise(e) if e.tracking and e.customer_id and e.customer_id not in consenting
              else e for e in kept]

    rows = [(e.event_id, e.kind, e.channel, source, e.store_id, e.zone, e.customer_id,
             e.session_id, e.gtin, e.category, e.points, e.occurred_at, now,
             json.dumps(e.payload, separators=(",", ":"), allow_nan=False), e.alias_key)
            for e in stored]
    new_ids = {r["event_id"] for r in tx.insert_many(
        "events", _EVENT_COLUMNS, rows, "ON CONFLICT (event_id) DO NOTHING", "event_id")}
    for e in stored:
        (result.accepted if e.event_id in new_ids else result.duplicate).append(e.event_id)

    fresh = [e for e in stored if e.event_id in new_ids]
    # A member who shows their card has a profile (identity, points, consents) whatever
    # their tracking consent: consent decides what is kept about the visit, not whether
    # the member exists. Hence the ids of ``kept``, before anonymisation.
    customers = sorted({e.customer_id for e in kept if e.customer_id})
    tx.insert_many("customers", ("customer_id", "created_at"), [(c, now) for c in customers],
                   "ON CONFLICT (customer_id) DO NOTHING")
    linking = [e for e in fresh if e.tracking and e.customer_id]
    identity.link_sessions(tx, [(e.session_id, e.customer_id) for e in linking], now)
    identity.link_aliases(tx, [(e.alias_key, e.customer_id) for e in linking], now)
    screen_attribution.record(tx, fresh, attribution_window_s, now)
    return result


def _kiosk_consent_scope(tx: Tx, events: list[Event], sender: Principal, window_s: float,
                         result: BatchResult) -> list[Event]:
    """A store's kiosk records consent only for a customer who identified there.

    The kiosk channel acts at the customer's request after they showed their card:
    a ``consent`` event a store sends must follow, within ``window_s`` of its own
    time, a presence of that customer in that store, in this batch or already
    recorded (``customer_stores.present_at``). Anything else is a store deciding for
    a customer who is not there, refused (a withdrawal anonymises a history, so a
    forged one is refused too).
    """
    asks = [e for e in events if e.kind == "consent" and sender.kind == "store"]
    if not asks:
        return events
    shown: dict[str, float] = {}
    for e in events:
        if e.kind == "presence" and e.customer_id and e.store_id == sender.name:
            shown[e.customer_id] = max(shown.get(e.customer_id, 0.0), e.occurred_at)
    customers = sorted({e.customer_id or "" for e in asks} - set(shown))
    if customers:
        cond, params = tx.member("customer_id", customers)
        for row in tx.all(f"SELECT customer_id, present_at FROM customer_stores WHERE {cond} "
                          "AND store_id = ? AND present_at IS NOT NULL",
                          [*params, sender.name]):
            shown[row["customer_id"]] = float(row["present_at"])
    refused = {e.event_id for e in asks
               if not e.customer_id or e.customer_id not in shown
               or shown[e.customer_id] < e.occurred_at - window_s}
    for event_id in sorted(refused):
        result.rejected.append({"event_id": event_id, "reason": (
            "consent: a store's kiosk records consent only for a customer who showed "
            "their card in this store")})
    return [e for e in events if e.event_id not in refused]


def _ledger(tx: Tx, events: list[Event], sender: Principal, limits: LoyaltyLimits, now: float,
            result: BatchResult) -> list[Event]:
    """Append the loyalty events' ledger entries; return the events still to store.

    A loyalty event already stored (same id) is left to the insert below to
    report as a duplicate; one whose reference already has its entry is a
    duplicate too; one refused by a limit is rejected and not stored at all.
    """
    loyal = [e for e in events if e.kind == "loyalty"]
    if not loyal:
        return events
    cond, params = tx.member("event_id", [e.event_id for e in loyal])
    known = {r["event_id"] for r in tx.all(f"SELECT event_id FROM events WHERE {cond}", params)}
    out = []
    for ev in events:
        if ev.kind == "loyalty" and ev.event_id not in known:
            try:
                if not loyalty.record(tx, ev, sender, limits, now):
                    result.duplicate.append(ev.event_id)
                    continue
            except EventRejected as exc:
                result.rejected.append({"event_id": ev.event_id, "reason": str(exc)})
                continue
        out.append(ev)
    return out
