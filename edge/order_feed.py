"""Central's order changes for this store, applied at the edge: web orders and statuses.

Central keeps one log per fulfilling store: every new order routed to it (a web
click & collect order for pickup here, a kiosk order of its own) and every
status change, whoever made it (``central/order_status.py``). The edge's sync
client pulls ``GET /api/v1/stores/<store>/order-changes?since=<seq>`` (the
``orders`` feed of :class:`edge.sync.SyncClient`: every ``sync_orders_s``, and at
once when central's bridge nudges on ``edge/sync/orders``) and applies each page
in one transaction with its cursor, so an edge that was offline for days
catches up from its last seq, and a page applied twice changes nothing.

For each change, in seq order:

- an order the edge does not hold (a web order, or a kiosk order another store
  took for collection here: ``taken_by``) is inserted into ``kiosk_orders``, the
  store's orders table, with the channel, the pickup code (central's, or the
  taking kiosk's) and the product names from the local catalogue, so the panel's
  pickup queue lists it beside the kiosk's; a web order's lines count in the
  panel's "tapped -> ordered" (``product_daily``);
- the log also holds the orders this store's kiosks took for another store:
  the edge has them already, and applies their status (the kiosk shows it);
- a status ahead of the edge's (:func:`contract.order_lifecycle.is_newer`) is
  applied and kept in ``order_history`` with who made it in central; a status
  behind it is the echo of a change this store made and sent: ignored.

Nothing applied here goes back into the outbox: central already has it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from contract.central_api import order_changes_path
from contract.order_lifecycle import STATUSES, is_newer

from .feed_fetch import FeedReader, fetch_log
from .order_status import record_history

log = logging.getLogger("vitrine.edge.orders")

DAY = 86_400.0
#: Largest page central serves (central/order_status.py MAX_CHANGES_PAGE).
PAGE = 500


def fetch(reader: FeedReader, store_id: str, since: int, max_pages: int = 1000
          ) -> tuple[list[dict[str, Any]], int]:
    """Every change after ``since`` (all pages, before anything is applied) and the cursor."""
    return fetch_log(reader, lambda cursor, n: order_changes_path(store_id, cursor, n),
                     "changes", since, PAGE, max_pages)


def _total(order: dict[str, Any]) -> int:
    if isinstance(order.get("total_cents"), int):
        return max(0, order["total_cents"])
    return sum(int(ln.get("unit_price_cents") or 0) * int(ln.get("quantity") or 0)
               for ln in order.get("lines", []))


def _with_names(conn: sqlite3.Connection, order: dict[str, Any]) -> dict[str, Any]:
    """The order with each line's product name from the local catalogue (for the panel)."""
    lines = []
    for line in order.get("lines", []):
        line = dict(line)
        if not line.get("name"):
            row = conn.execute("SELECT name FROM products WHERE gtin = ?",
                               (line.get("gtin"),)).fetchone()
            line["name"] = row[0] if row and row[0] else line.get("gtin")
        lines.append(line)
    return {**order, "lines": lines}


def _insert(conn: sqlite3.Connection, change: dict[str, Any], now: float,
            store_id: str | None) -> None:
    order = _with_names(conn, change["order"])
    channel = str(change.get("channel") or order.get("channel") or "web")
    device = order.get("device_id") or channel
    if change.get("taken_by") and change["taken_by"] != store_id:
        # Taken at another store's kiosk: no kiosk of this store may read it as its own.
        # (One this store took, and no longer held, keeps its kiosk: it is not queued here.)
        device = f"store:{change['taken_by']}"
    conn.execute(
        "INSERT INTO kiosk_orders (order_id, device_id, client_order_id, session_id, "
        "customer_id, status, total_cents, currency, points_spent, points_earned, pickup_code, "
        "payload, created_at, updated_at, channel) "
        "VALUES (?, ?, ?, NULL, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?)",
        (change["order_id"], device, change["order_id"],
         order.get("customer_id"), change["status"], _total(order),
         order.get("currency") or "EUR", change.get("pickup_code") or "",
         json.dumps(order, sort_keys=True), float(order.get("created_at") or now), now,
         channel))


def count_ordered(conn: sqlite3.Connection, order: dict[str, Any], now: float) -> None:
    """Add a web (app, call centre) order's lines to ``product_daily``: the panel's "tapped
    -> ordered" counts what shoppers ordered online for pickup here, beside the kiosk's
    (``edge/analytics.py`` counts those from the outbox). Called once per order, when it
    is inserted; a kiosk order another store took counts where it was taken."""
    created = order.get("created_at")
    day = (float(created) if isinstance(created, (int, float)) and not isinstance(
        created, bool) else now) // DAY * DAY
    quantities: dict[str, int] = {}
    for line in order.get("lines", []):
        gtin, qty = line.get("gtin"), line.get("quantity")
        if isinstance(gtin, str) and isinstance(qty, int) and not isinstance(qty, bool):
            quantities[gtin] = quantities.get(gtin, 0) + qty
    conn.executemany(
        "INSERT INTO product_daily (day, gtin, ordered, orders) VALUES (?, ?, ?, 1)"
        " ON CONFLICT (day, gtin) DO UPDATE SET ordered = ordered + excluded.ordered,"
        " orders = orders + 1", [(day, g, q) for g, q in quantities.items()])


def check_change(change: Any) -> tuple[int, str, str]:
    """``(seq, order_id, status)`` of a change in the documented shape, else
    :class:`ValueError` with the reason (the pull then fails whole, the cursor stays)."""
    if not isinstance(change, dict):
        raise ValueError("an order change is not an object")
    seq, order_id, status = change.get("seq"), change.get("order_id"), change.get("status")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError(f"order change: bad seq {seq!r}")
    if not isinstance(order_id, str) or not 0 < len(order_id) <= 128:
        raise ValueError(f"order change {seq}: bad order_id")
    if status not in STATUSES:
        raise ValueError(f"order change {seq}: unknown status {status!r}")
    order = change.get("order")
    lines = order.get("lines", []) if isinstance(order, dict) else None
    if not isinstance(order, dict) or order.get("order_id") != order_id or not isinstance(
            lines, list) or not all(isinstance(ln, dict) for ln in lines):
        raise ValueError(f"order change {seq}: the order is not in the documented shape")
    for key in ("pickup_code", "channel", "changed_by", "taken_by", "store_id"):
        if change.get(key) is not None and not isinstance(change[key], str):
            raise ValueError(f"order change {seq}: {key} must be a string")
    return seq, order_id, status


def apply(conn: sqlite3.Connection, changes: list[dict[str, Any]], now: float, *,
          store_id: str | None = None) -> list[dict[str, Any]]:
    """Apply ``changes`` inside the caller's transaction; return the ones that changed
    something (new orders and statuses moved forward), for the log. A change not in
    the documented shape raises :class:`ValueError` (the caller rolls back).
    ``store_id``: this store (tells an order it took from one it fulfils)."""
    applied = []
    for change in changes:
        seq, order_id, status = check_change(change)
        if conn.execute("SELECT 1 FROM order_history WHERE central_seq = ?",
                        (seq,)).fetchone():
            continue
        row = conn.execute("SELECT status FROM kiosk_orders WHERE order_id = ?",
                           (order_id,)).fetchone()
        if row is None:
            try:
                _insert(conn, change, now, store_id)
                if change.get("channel", "web") != "kiosk":
                    count_ordered(conn, change["order"], now)
            except (ValueError, TypeError, OverflowError, AttributeError) as exc:
                raise ValueError(f"order change {seq}: {exc}") from None
            previous = None
        elif is_newer(status, row[0]):
            previous = row[0]
            conn.execute("UPDATE kiosk_orders SET status = ?, updated_at = ? WHERE order_id = ?",
                         (status, now, order_id))
        else:
            continue  # the echo of this store's own change, or older news
        record_history(conn, order_id, previous, status, origin="central",
                       changed_by=change.get("changed_by"), at=now, central_seq=seq)
        applied.append({"order_id": order_id, "previous": previous, "status": status,
                        "changed_by": change.get("changed_by"),
                        "channel": change.get("channel")})
    return applied
