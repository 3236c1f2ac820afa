"""The store's side of central's loyalty ledger: kiosk points from the hold to central's answer.

Central keeps the one balance (:mod:`central.loyalty`: append-only, one credit and
one debit per order, never negative). A kiosk order moves points twice: the
shopper spends some as a discount (a debit) and earns some on what they pay (a
credit). Both are computed here, at the edge, from the order the edge priced
(``kiosk_orders``), never taken from the kiosk, and reach central as ``loyalty``
events of the ``kiosk`` channel through the outbox and the forwarder::

    {"event_id": uuid5("kiosk-loyalty/<order_id>/<debit|credit>"), "type": "loyalty",
     "channel": "kiosk", "occurred_at": ..., "customer_id": ..., "store_id": ...,
     "points": -300 | 120, "reference": {"kind": "order", "id": "<order_id>"}}

The event id and the reference are functions of the order id: a replayed outbox
row, a retried request, a re-sent batch all land on central's unique
``(reference, direction)`` key and count once.

Each entry has a row in ``kiosk_loyalty`` that walks through these states:

``held``
    The spend is reserved at placement (the discount is in the order's total) but
    the order is not paid: nothing is sent. Another order at this edge cannot spend
    the same points; an unpaid order's hold stops counting after :data:`HOLD_TTL_S`,
    or at once when the order is cancelled.
``pending``
    Payment approved (or nothing left to pay): debit and credit are in the outbox.
    While central is unreachable the order stands, the kiosk shows the balance less
    the pending spend and says the points are provisional.
``posted``
    Central accepted the entry (or already had it). Until the next profile fetch
    from central starts after this moment, the cached balance does not contain it,
    so the edge applies it on top of the cache.
``refused``
    Central refused it (a debit below zero because the points were spent on the
    web meanwhile, a daily limit): the reason is kept, ``order_status`` answers
    ``points_state: "refused"`` and the forwarder logs it, so the store collects
    the difference at pick-up. The order itself is not undone.

The forwarder settles ``pending`` rows in the same transaction in which it marks
their outbox rows sent (:func:`settle`), and holds back a loyalty row while its
order has not reached central (central refuses an entry for an order it does not
know).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from .pipeline import uuid5_str

#: An unpaid order's spend stops being reserved after this long (an abandoned cart).
HOLD_TTL_S = 1800.0
#: What ``order_status`` says about an order's points, worst first.
POINT_STATES = ("refused", "held", "pending", "posted")
OUTBOX_KIND = "loyalty"


def entry_event_id(order_id: str, direction: str) -> str:
    """The ledger event's id: one per order and direction, whatever is retried."""
    return uuid5_str(f"kiosk-loyalty/{order_id}/{direction}")


def hold(conn: sqlite3.Connection, order_id: str, customer_id: str, points: int,
         now: float) -> None:
    """Reserve ``points`` of ``customer_id`` for ``order_id`` (placed, not paid)."""
    if points <= 0:
        return
    conn.execute(
        "INSERT OR IGNORE INTO kiosk_loyalty (order_id, direction, customer_id, points, "
        "event_id, state, created_at, updated_at) VALUES (?, 'debit', ?, ?, ?, 'held', ?, ?)",
        (order_id, customer_id, points, entry_event_id(order_id, "debit"), now, now))


def post(conn: sqlite3.Connection, order_id: str, store_id: str, now: float) -> int:
    """The order is paid: queue its debit and credit for central; return entries queued.

    Reads the amounts from the order row the edge priced. Idempotent: an entry
    already queued (or settled) is left as it is.
    """
    row = conn.execute("SELECT customer_id, points_spent, points_earned FROM kiosk_orders "
                       "WHERE order_id = ?", (order_id,)).fetchone()
    if row is None or row[0] is None:
        return 0
    customer_id, spent, earned = row
    queued = 0
    for direction, points in (("debit", spent), ("credit", earned)):
        if points <= 0:
            continue
        event_id = entry_event_id(order_id, direction)
        conn.execute(
            "INSERT OR IGNORE INTO kiosk_loyalty (order_id, direction, customer_id, points, "
            "event_id, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'held', ?, ?)",
            (order_id, direction, customer_id, points, event_id, now, now))
        moved = conn.execute("UPDATE kiosk_loyalty SET state = 'pending', updated_at = ? "
                             "WHERE event_id = ? AND state = 'held'", (now, event_id)).rowcount
        if not moved:
            continue
        event = {"event_id": event_id, "type": "loyalty", "channel": "kiosk",
                 "occurred_at": now, "customer_id": customer_id, "store_id": store_id,
                 "points": points if direction == "credit" else -points,
                 "reference": {"kind": "order", "id": order_id}}
        conn.execute("INSERT OR IGNORE INTO outbox (event_id, kind, customer_key, payload, "
                     "created_at) VALUES (?, ?, ?, ?, ?)",
                     (event_id, OUTBOX_KIND, customer_id, json.dumps(event, sort_keys=True),
                      now))
        queued += 1
    return queued


def available(conn: sqlite3.Connection, customer_id: str, cached: int, fetched_at: float,
              now: float) -> tuple[int, bool]:
    """``(points the shopper has, provisional)`` from central's cached balance.

    ``cached`` is central's balance as read by a fetch that started at
    ``fetched_at``. Less every spend central does not know yet (held within
    :data:`HOLD_TTL_S`, pending) or that it accepted after that fetch started;
    plus credits it accepted after it. ``provisional``: some of it still waits
    for central's answer. Never below zero.
    """
    spend_unknown = spend_after = credit_after = 0
    provisional = False
    for direction, state, points, created in conn.execute(
            "SELECT direction, state, points, created_at FROM kiosk_loyalty "
            "WHERE customer_id = ? AND (state = 'pending' OR (state = 'posted' AND "
            "updated_at >= ?) OR (state = 'held' AND order_id NOT IN (SELECT order_id "
            "FROM kiosk_orders WHERE status = 'cancelled')))", (customer_id, fetched_at)):
        if state == "held" and created < now - HOLD_TTL_S:
            continue
        if state == "posted":
            if direction == "debit":
                spend_after += points
            else:
                credit_after += points
            continue
        if direction == "debit":
            spend_unknown += points
        provisional = True
    return max(0, cached - spend_unknown - spend_after + credit_after), provisional


def order_state(conn: sqlite3.Connection, order_id: str) -> tuple[str | None, str | None]:
    """``(state, reason)`` of an order's points, the worst of its entries; None if none."""
    rows = conn.execute("SELECT state, reason FROM kiosk_loyalty WHERE order_id = ?",
                        (order_id,)).fetchall()
    for state in POINT_STATES:
        for row_state, reason in rows:
            if row_state == state:
                return state, reason
    return None, None


def settle(conn: sqlite3.Connection, answers: Iterable[tuple[str, str | None]],
           now: float) -> int:
    """Record central's answer per ledger event id: accepted (``None``) or refused (reason).

    Called by the forwarder inside the transaction that marks the outbox rows sent.
    """
    moved = 0
    for event_id, refused in answers:
        moved += conn.execute(
            "UPDATE kiosk_loyalty SET state = ?, reason = ?, updated_at = ? "
            "WHERE event_id = ? AND state = 'pending'",
            ("refused" if refused else "posted", refused[:500] if refused else None, now,
             event_id)).rowcount
    return moved


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    """Entries per state, for the edge's metrics and tests."""
    return {state: n for state, n in conn.execute(
        "SELECT state, count(*) FROM kiosk_loyalty GROUP BY state")}
