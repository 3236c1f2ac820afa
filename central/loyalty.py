"""Loyalty points: an append-only ledger, one entry per order or purchase and direction.

A loyalty event (``type: "loyalty"``) must say what it is for:
``"reference": {"kind": "order"|"purchase", "id": ...}``. The ledger keeps
at most one credit and one debit per reference (a unique key), so a retried or
replayed credit is a duplicate, never a second credit, and the database
refuses to update an entry (a trigger): a balance only moves by new entries.

Limits, from the configuration: no entry larger than ``per_entry`` points,
no more than ``per_day`` points credited to one customer in a rolling 24 h
(all sources together), and no debit below a zero balance. An order reference
must name an existing order of that customer that the sender fulfils or
submitted (a store: a kiosk order collected there, or a home delivery its kiosk
took) or took (a channel; the CRM may reference any order). Entries are serialised
per customer (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two
workers cannot both pass the daily limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from central.credentials import Principal
from central.db import Tx
from central.errors import EventRejected
from central.events import Event

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class LoyaltyLimits:
    per_entry: int = 5000
    per_day: int = 20000


def balance(tx: Tx, customer_id: str) -> int:
    row = tx.one("SELECT COALESCE(SUM(points), 0) AS total FROM loyalty_ledger "
                 "WHERE customer_id = ?", (customer_id,))
    return int(row["total"]) if row else 0


def _check_order(tx: Tx, ev: Event, ref_id: str, sender: Principal) -> None:
    order = tx.one("SELECT store_id, channel, customer_id, submitted_by FROM orders "
                   "WHERE order_id = ?", (ref_id,))
    if order is None or order["customer_id"] != ev.customer_id:
        raise EventRejected(f"loyalty: no order {ref_id!r} of this customer")
    if sender.kind == "store" and sender.label not in (f"store:{order['store_id']}",
                                                       order["submitted_by"]):
        raise EventRejected(f"loyalty: order {ref_id!r} is not fulfilled by this store")
    if sender.kind == "channel" and sender.name not in (order["channel"], "crm"):
        raise EventRejected(f"loyalty: order {ref_id!r} was not taken by this channel")


def record(tx: Tx, ev: Event, sender: Principal, limits: LoyaltyLimits, now: float) -> bool:
    """Append ``ev``'s ledger entry; False for a duplicate; :class:`EventRejected` if refused."""
    customer, points = ev.customer_id or "", int(ev.points or 0)
    ref = ev.payload["reference"]
    direction = "credit" if points > 0 else "debit"
    if abs(points) > limits.per_entry:
        raise EventRejected(f"loyalty: at most {limits.per_entry} points per entry")
    existing = tx.one("SELECT customer_id, points, event_id FROM loyalty_ledger WHERE "
                      "ref_kind = ? AND ref_id = ? AND direction = ?",
                      (ref["kind"], ref["id"], direction))
    if existing is not None:
        if existing["customer_id"] == customer and int(existing["points"]) == points:
            return False
        raise EventRejected(f"loyalty: {ref['kind']} {ref['id']!r} already has a {direction}")
    if ref["kind"] == "order":
        _check_order(tx, ev, ref["id"], sender)
    tx.lock(f"loyalty:{customer}")
    if direction == "credit":
        row = tx.one("SELECT COALESCE(SUM(points), 0) AS total FROM loyalty_ledger WHERE "
                     "customer_id = ? AND direction = 'credit' AND recorded_at > ?",
                     (customer, now - DAY_S))
        if int(row["total"]) + points > limits.per_day:
            raise EventRejected(f"loyalty: at most {limits.per_day} points credited per "
                                "customer and day")
    elif balance(tx, customer) + points < 0:
        raise EventRejected("loyalty: the debit exceeds the customer's balance")
    tx.execute("INSERT INTO customers (customer_id, created_at) VALUES (?, ?) "
               "ON CONFLICT (customer_id) DO NOTHING", (customer, now))
    rows = tx.insert_many(
        "loyalty_ledger", ("customer_id", "points", "ref_kind", "ref_id", "direction", "source",
                           "event_id", "occurred_at", "recorded_at"),
        [(customer, points, ref["kind"], ref["id"], direction, sender.label, ev.event_id,
          ev.occurred_at, now)], "ON CONFLICT (ref_kind, ref_id, direction) DO NOTHING",
        "entry_id")
    return bool(rows)
