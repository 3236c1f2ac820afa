"""Record what a shelf label reports displaying, in the transaction that accepts the report.

A label publishes on ``devices/{id}/label`` (``label.json``) the hash of the
bitmap it now shows (``ok: true``) or the one it refused (``ok: false``). The
pipeline calls :func:`record_label_report` in the same transaction as the
event row, so "this label shows price P" is committed exactly when the
report is acknowledged to the broker. A report for a bitmap that is no longer
the wanted one (a late ack of an older price) is recorded as what is shown,
with no shelf price: the label is out of date until it acks the current hash.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def record_label_report(conn: sqlite3.Connection, device_id: str, report: dict[str, Any],
                        at: float) -> str:
    """Apply one report; returns ``current``, ``stale``, ``refused`` or ``unknown_label``."""
    row = conn.execute("SELECT want_hash, want_price_cents FROM shelf_labels "
                       "WHERE device_id = ?", (device_id,)).fetchone()
    if row is None:
        return "unknown_label"
    want_hash, want_price = row
    if not report.get("ok"):
        conn.execute("UPDATE shelf_labels SET refused = refused + 1, last_error = ? "
                     "WHERE device_id = ?", (str(report.get("error", ""))[:200], device_id))
        return "refused"
    shown = report["hash"]
    if shown == want_hash:
        conn.execute("UPDATE shelf_labels SET acked_hash = ?, acked_price_cents = ?, "
                     "acked_at = ?, last_error = NULL WHERE device_id = ?",
                     (shown, want_price, at, device_id))
        return "current"
    conn.execute("UPDATE shelf_labels SET acked_hash = ?, acked_price_cents = NULL, "
                 "acked_at = ? WHERE device_id = ?", (shown, at, device_id))
    return "stale"
