"""Moving a store's order along its lifecycle at the edge, and telling central.

Every status change the store makes (a kiosk payment, the panel's prepare ->
ready -> collected) goes through :func:`change_status`: in one savepoint on the
caller's connection it checks the move against :mod:`contract.order_lifecycle`
(the same table central checks), updates ``kiosk_orders`` only if the order is
still in the status the caller saw (two tablets cannot both move it), records
who and when in ``order_history``, and queues an outbox row of kind
``order_status`` that the forwarder sends to central's
``POST /api/v1/orders/<id>/status``. The row commits with the change, so central
hears of every change the store made, in order, even after days offline.

The change id is a UUIDv5 of the order and the status reached: every move goes
forward, so an order reaches a status at most once, and a retried send of the
same change is central's ``duplicate``.

Changes made in central come the other way (:mod:`edge.order_feed`) and are not
sent back.
"""

from __future__ import annotations

import json
import sqlite3

from contract.order_lifecycle import TransitionError, check_move

from .pipeline import uuid5_str

__all__ = ["OrderNotFound", "StaleStatus", "TransitionError", "change_status", "record_history"]


class OrderNotFound(LookupError):
    """No such order in this store."""


class StaleStatus(RuntimeError):
    """The order is no longer in the status the caller saw (another clerk moved it)."""

    def __init__(self, current: str) -> None:
        super().__init__(f"the order is {current} now")
        self.current = current


def record_history(conn: sqlite3.Connection, order_id: str, previous: str | None, status: str,
                   *, origin: str, changed_by: str | None, at: float,
                   central_seq: int | None = None) -> None:
    conn.execute("INSERT INTO order_history (order_id, previous, status, origin, changed_by, at,"
                 " central_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (order_id, previous, status, origin, changed_by, at, central_seq))


def change_status(conn: sqlite3.Connection, order_id: str, target: str, *, actor: str,
                  now: float, expected: str | None = None) -> bool:
    """Move ``order_id`` to ``target`` and queue the change for central; False if it
    was there already. Raise :class:`OrderNotFound`, :class:`StaleStatus` (not in
    ``expected`` any more) or :class:`TransitionError` (a move the lifecycle refuses)."""
    row = conn.execute("SELECT status FROM kiosk_orders WHERE order_id = ?",
                       (order_id,)).fetchone()
    if row is None:
        raise OrderNotFound(order_id)
    current = row[0]
    if expected is not None and current != expected:
        raise StaleStatus(current)
    if not check_move(current, target):
        return False
    change_id = uuid5_str(f"order-status/{order_id}/{target}")
    payload = json.dumps({"order_id": order_id, "change_id": change_id, "status": target,
                          "occurred_at": now, "actor": actor[:64]}, sort_keys=True)
    conn.execute("SAVEPOINT order_status")
    try:
        moved = conn.execute("UPDATE kiosk_orders SET status = ?, updated_at = ? "
                             "WHERE order_id = ? AND status = ?",
                             (target, now, order_id, current)).rowcount
        if not moved:
            raise StaleStatus(conn.execute("SELECT status FROM kiosk_orders WHERE order_id = ?",
                                           (order_id,)).fetchone()[0])
        record_history(conn, order_id, current, target, origin="store", changed_by=actor,
                       at=now)
        # customer_key = the order: a status row carries no customer, so an erasure
        # (edge/erasure.py) has nothing of the customer's to find in it.
        conn.execute("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at) "
                     "VALUES (?, 'order_status', ?, ?, ?)", (change_id, order_id, payload, now))
    except BaseException:
        conn.execute("ROLLBACK TO order_status")
        conn.execute("RELEASE order_status")
        raise
    conn.execute("RELEASE order_status")
    return True
