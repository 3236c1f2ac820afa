"""The store's own opinions: a manager's markdown and a staff shelf count.

One writer each, used by the sync client and by a standalone panel alike, so the
two paths cannot drift apart (they had: only one kept a later count from being
overwritten by an older one). Both run inside the caller's write transaction;
the ``price`` and ``stock`` rules (edge/rules.py) weigh them against central.
"""

from __future__ import annotations

import sqlite3

from .feed_apply import materialise
from .rules import Rules


def write_markdown(conn: sqlite3.Connection, store_id: str, rules: Rules, gtin: str,
                   price_cents: int | None, *, now: float, valid_to: float | None = None,
                   set_by: str | None = None) -> float:
    """Set (or, with None, remove) a markdown and reprice ``gtin``; return the next price
    change time, as :func:`edge.feed_apply.materialise` does."""
    if price_cents is None:
        conn.execute("DELETE FROM local_markdowns WHERE gtin = ?", (gtin,))
    else:
        conn.execute("INSERT OR REPLACE INTO local_markdowns (gtin, price_cents, valid_from,"
                     " valid_to, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?)",
                     (gtin, price_cents, now, valid_to, set_by, now))
    return materialise(conn, store_id, rules, [gtin], now)


def write_store_count(conn: sqlite3.Connection, gtin: str, quantity: int, *, at: float,
                      counted_by: str | None = None) -> None:
    """Record a shelf count; an older count never replaces a newer one."""
    conn.execute(
        "INSERT INTO local_stock_counts (gtin, quantity, counted_at, counted_by) VALUES"
        " (?, ?, ?, ?) ON CONFLICT (gtin) DO UPDATE SET quantity = excluded.quantity,"
        " counted_at = excluded.counted_at, counted_by = excluded.counted_by"
        " WHERE local_stock_counts.counted_at <= excluded.counted_at",
        (gtin, quantity, at, counted_by))
