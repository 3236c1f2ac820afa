"""Right to be forgotten at the edge: delete a customer's local copies on central's order.

Central records an erasure order per erased customer (``seq``, customer id,
the session ids it knew). The edge's sync client polls
``GET /api/v1/stores/<store>/erasures?since=<seq>`` (the ``erasures`` feed of
:class:`edge.sync.SyncClient`), and an edge that was offline for days catches
up from its last seq. For each order, in one transaction with the cursor:

- ``events`` (raw device messages) credited to the customer are deleted: the
  pipeline records each read it credits to someone in ``event_customers``
  (:mod:`edge.sessions` says when a read is someone's), so the reads of other
  shoppers at the same device, before, between and after, stay;
- ``sessions`` of the customer (central's ids plus the ones this edge linked
  locally and may not have forwarded yet) are deleted; sessions carrying a
  customer are only ever that customer's. Sessions recorded before migration
  ``0006_attribution`` (kind ``legacy``) were per device and could hold other
  shoppers' reads; for those the old rule stays (raw reads inside the
  session's window are deleted), erring on the side of the erased customer;
- ``outbox`` rows of the customer or of those sessions (by ``customer_key`` or
  by ``customer_id``/``session_id`` in the payload) are deleted, **except
  orders and their status changes**: central keeps orders as accounting records
  (docs/operations.md);
- ``security_events`` hinting at the customer are deleted.

``erasures_applied`` records each seq (with a count, not the customer id), so
applying an order twice changes nothing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from contract.central_api import erasures_path

from .feed_fetch import FeedReader, fetch_log

#: Largest page central serves (central/privacy.py MAX_FEED_PAGE).
PAGE = 1000


def fetch(reader: FeedReader, store_id: str, since: int, max_pages: int = 1000
          ) -> tuple[list[dict[str, Any]], int]:
    """Every erasure order after ``since`` and the new cursor."""
    return fetch_log(reader, lambda cursor, n: erasures_path(store_id, cursor, n), "erasures",
                     since, PAGE, max_pages)


def _marks(values: Sequence[Any]) -> str:
    return "(" + ",".join("?" * len(values)) + ")" if values else "(NULL)"


def erase_customer(conn: sqlite3.Connection, customer_id: str,
                   session_ids: Iterable[str] = ()) -> int:
    """Delete the local copies of one customer (inside the caller's transaction)."""
    local = [r[0] for r in conn.execute(
        "SELECT session_id FROM sessions WHERE customer_id = ?", (customer_id,))]
    sessions = sorted(set(session_ids) | set(local))
    marks = _marks(sessions)
    deleted = conn.execute(
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e JOIN event_customers c "
        "ON e.device_id = c.device_id AND e.msg_id = c.msg_id WHERE c.customer_id = ?)",
        (customer_id,)).rowcount
    deleted += conn.execute(
        f"DELETE FROM events WHERE id IN (SELECT e.id FROM events e JOIN sessions s "
        f"ON e.device_id = s.device_id AND e.received_at BETWEEN s.started_at AND s.last_at "
        f"WHERE s.kind = 'legacy' AND s.session_id IN {marks})", sessions).rowcount
    conn.execute("DELETE FROM event_customers WHERE customer_id = ?", (customer_id,))
    keys = [customer_id, *sessions]
    deleted += conn.execute(
        f"DELETE FROM outbox WHERE kind NOT IN ('order', 'order_status') "
        f"AND (customer_key IN {_marks(keys)} "
        f"OR json_extract(payload, '$.customer_id') = ? "
        f"OR json_extract(payload, '$.session_id') IN {marks})",
        [*keys, customer_id, *sessions]).rowcount
    deleted += conn.execute("DELETE FROM security_events WHERE customer_hint = ?",
                            (customer_id,)).rowcount
    deleted += conn.execute(f"DELETE FROM sessions WHERE session_id IN {marks}",
                            sessions).rowcount
    # What kiosks keep about them: the profile summary from central, the wish-list.
    # Orders stay, as at central: accounting records kept under a legal obligation
    # (central/privacy.py, docs/operations.md).
    for table in ("customer_cache", "kiosk_wishlist", "kiosk_loyalty"):
        deleted += conn.execute(f"DELETE FROM {table} WHERE customer_id = ?",
                                (customer_id,)).rowcount
    return deleted


def apply(conn: sqlite3.Connection, orders: Iterable[dict[str, Any]],
          now: float | None = None) -> int:
    """Apply erasure orders not applied yet (inside the caller's transaction); rows deleted."""
    now = time.time() if now is None else now
    total = 0
    for order in orders:
        seq = int(order["seq"])
        if conn.execute("SELECT 1 FROM erasures_applied WHERE seq = ?", (seq,)).fetchone():
            continue
        n = erase_customer(conn, str(order["customer_id"]), order.get("session_ids") or [])
        conn.execute("INSERT INTO erasures_applied (seq, applied_at, rows_deleted) "
                     "VALUES (?, ?, ?)", (seq, now, n))
        total += n
    return total
