"""Identity resolution: loyalty ids, anonymous sessions, device-scoped aliases, tombstones.

An anonymous identifier becomes part of a customer's profile when an event
carries both it and the customer id (a loyalty tap at a kiosk, an app QR scan,
a web login). Two kinds exist:

- a **session** id: one visit on one device, minted by the edge or a channel;
- a **device-scoped alias**: an identifier that outlives visits but only means
  something inside its scope, e.g. ``{"alias": "app-install:abc", "scope":
  "app"}`` (an app installation), a web cookie id, a kiosk-local id. It is
  stored as the key ``scope:alias`` so the same string in two scopes (two
  apps numbering installations from 1) never merges two people.

A link is stored once in ``identity_links`` (kind ``session`` or ``alias``) and
applied when the profile is read, so earlier events join the profile whatever
order the events arrive in, without rewriting them. The first customer to
claim an identifier keeps it: a second claim is more likely a shared kiosk or
family tablet than a better answer, and silently moving history between two
people is the worse error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from central.db import Tx
from central.events import Event, alias_key

#: Kinds of anonymous identifiers linked to customers (``identity_links.kind``).
LINK_KINDS = ("session", "alias")

__all__ = ["LINK_KINDS", "LINKED_EVENTS", "alias_key", "alias_of_key", "link_sessions",
           "link_aliases", "sessions_of", "alias_keys_of", "aliases_of", "erased_before"]

#: The three ways an event belongs to a customer, each a condition on ``events`` with
#: one ``?`` (the customer id). Callers run one statement per branch instead of
#: OR-ing them: PostgreSQL plans ``x IN (subquery) OR ...`` as a subplan that
#: falls back to a linear scan per row once the customer's links outgrow
#: ``work_mem`` (minutes for 250,000 sessions), while each branch alone is a
#: semi-join. Subqueries, not parameter lists, so any number of links fits.
LINKED_EVENTS = (
    "customer_id = ?",
    "session_id IN (SELECT value FROM identity_links WHERE kind = 'session' "
    "AND customer_id = ?)",
    "alias_key IN (SELECT value FROM identity_links WHERE kind = 'alias' AND customer_id = ?)",
)


def alias_of_key(key: str) -> dict[str, str]:
    """The ``{"alias", "scope"}`` object an API caller sent, from its stored key."""
    scope, _, alias = key.partition(":")
    return {"alias": alias, "scope": scope}


def _link(tx: Tx, kind: str, pairs: Iterable[tuple[str | None, str | None]], now: float
          ) -> None:
    links: dict[str, str] = {}
    for value, customer in pairs:
        if value and customer:
            links.setdefault(value, customer)
    tx.insert_many("identity_links", ("kind", "value", "customer_id", "linked_at"),
                   [(kind, v, links[v], now) for v in sorted(links)],
                   "ON CONFLICT (kind, value) DO NOTHING")


def link_sessions(tx: Tx, pairs: Iterable[tuple[str | None, str | None]], now: float) -> None:
    """Record ``session -> customer`` links not known yet (idempotent)."""
    _link(tx, "session", pairs, now)


def link_aliases(tx: Tx, pairs: Iterable[tuple[str | None, str | None]], now: float) -> None:
    """Record ``alias key -> customer`` links not known yet (idempotent)."""
    _link(tx, "alias", pairs, now)


def _linked(tx: Tx, kind: str, customer_id: str) -> list[str]:
    return [r["value"] for r in tx.all(
        "SELECT value FROM identity_links WHERE kind = ? AND customer_id = ? "
        "ORDER BY linked_at, value", (kind, customer_id))]


def sessions_of(tx: Tx, customer_id: str) -> list[str]:
    return _linked(tx, "session", customer_id)


def alias_keys_of(tx: Tx, customer_id: str) -> list[str]:
    return _linked(tx, "alias", customer_id)


def aliases_of(tx: Tx, customer_id: str) -> list[dict[str, Any]]:
    """Linked aliases as the profile and the export show them."""
    return [{**alias_of_key(r["value"]), "linked_at": r["linked_at"]} for r in tx.all(
        "SELECT value, linked_at FROM identity_links WHERE kind = 'alias' AND customer_id = ? "
        "ORDER BY linked_at, value", (customer_id,))]


def erased_before(tx: Tx, batch: Sequence[Event]) -> set[str]:
    """Ids of events that belong to an identity erased after they happened.

    An edge or app that was offline during an erasure may still send that
    customer's old events; they must not recreate the profile.
    """
    wanted = {"customer": sorted({e.customer_id for e in batch if e.customer_id}),
              "session": sorted({e.session_id for e in batch if e.session_id}),
              "alias": sorted({e.alias_key for e in batch if e.alias_key})}
    if not any(wanted.values()):
        return set()
    clauses, params = [], []
    for kind, values in wanted.items():
        cond, p = tx.member("value", values)
        clauses.append(f"(kind = '{kind}' AND {cond})")
        params += p
    rows = tx.all("SELECT kind, value, erased_at FROM erased_identities WHERE "
                  + " OR ".join(clauses), params)
    if not rows:
        return set()
    erased = {(r["kind"], r["value"]): r["erased_at"] for r in rows}
    out = set()
    for e in batch:
        for key in (("customer", e.customer_id), ("session", e.session_id),
                    ("alias", e.alias_key)):
            when = erased.get(key)  # type: ignore[arg-type]
            if when is not None and e.occurred_at <= when:
                out.add(e.event_id)
    return out
