"""What a kiosk shows about a product's stock: this store, other stores, the web warehouse.

One function, read by the sync client (``SyncClient.stock_view``) and by the ``stock``
request a kiosk sends (``edge/request_ops.py``), so both answer the same question the
same way: this store's figure is the one :mod:`edge.rules` picks between central's
feed and the store's own shelf count.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .rules import Candidate, Rules

WEB_WAREHOUSE = "web-warehouse"


def stock_view(conn: sqlite3.Connection, store_id: str, gtin: str, rules: Rules, now: float,
               warehouse: str = WEB_WAREHOUSE) -> dict[str, Any]:
    rows = conn.execute("SELECT location, quantity, observed_at FROM sync_stock "
                        "WHERE gtin = ?", (gtin,)).fetchall()
    count = conn.execute("SELECT quantity, counted_at FROM local_stock_counts "
                         "WHERE gtin = ?", (gtin,)).fetchone()
    by_loc = {loc: (qty, at) for loc, qty, at in rows}
    candidates = [Candidate("store_count", count[0], count[1])] if count else []
    if store_id in by_loc:
        qty, at = by_loc[store_id]
        candidates.append(Candidate("central", qty, at))
    win = rules.resolve("stock", candidates, now)
    return {"gtin": gtin,
            "this_store": None if win is None else {"quantity": win.value,
                                                    "source": win.source,
                                                    "observed_at": win.observed_at},
            "other_stores": {loc: q for loc, (q, _) in sorted(by_loc.items())
                             if loc not in (store_id, warehouse)},
            "web_warehouse": by_loc.get(warehouse, (None, None))[0]}
