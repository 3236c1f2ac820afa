"""Identity resolution: loyalty customer ids, anonymous session ids, and erasure tombstones.

An anonymous session becomes part of a customer's profile when an event
carries both ids (a loyalty tap at a kiosk, an app QR scan, a web login). The
link is stored once in ``identity_links`` and applied when the profile is read,
so a session's earlier events join the profile whatever order the events
arrive in, without rewriting them. The first customer to claim a session keeps
it: a session is one visit on one device, and a second claim is more likely a
shared kiosk than a better answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from central.db import Tx
from central.events import Event


def link_sessions(tx: Tx, pairs: Iterable[tuple[str | None, str | None]], now: float) -> None:
    """Record ``session -> customer`` links not known yet (idempotent)."""
    links: dict[str, str] = {}
    for session, customer in pairs:
        if session and customer:
            links.setdefault(session, customer)
    tx.insert_many("identity_links", ("kind", "value", "customer_id", "linked_at"),
                   [("session", s, links[s], now) for s in sorted(links)],
                   "ON CONFLICT (kind, value) DO NOTHING")


def sessions_of(tx: Tx, customer_id: str) -> list[str]:
    return [r["value"] for r in tx.all(
        "SELECT value FROM identity_links WHERE kind = 'session' AND customer_id = ? "
        "ORDER BY linked_at, value", (customer_id,))]


def erased_before(tx: Tx, batch: Sequence[Event]) -> set[str]:
    """Ids of events that belong to an identity erased after they happened.

    An edge that was offline during an erasure may still forward that
    customer's old events; they must not recreate the profile.
    """
    customers = sorted({e.customer_id for e in batch if e.customer_id})
    sessions = sorted({e.session_id for e in batch if e.session_id})
    if not customers and not sessions:
        return set()
    by_customer, p1 = tx.member("value", customers)
    by_session, p2 = tx.member("value", sessions)
    rows = tx.all("SELECT kind, value, erased_at FROM erased_identities WHERE "
                  f"(kind = 'customer' AND {by_customer}) OR (kind = 'session' AND {by_session})",
                  [*p1, *p2])
    if not rows:
        return set()
    erased = {(r["kind"], r["value"]): r["erased_at"] for r in rows}
    out = set()
    for e in batch:
        for key in (("customer", e.customer_id), ("session", e.session_id)):
            when = erased.get(key)  # type: ignore[arg-type]
            if when is not None and e.occurred_at <= when:
                out.add(e.event_id)
    return out
