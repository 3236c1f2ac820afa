"""Order push: a store learns of a new web order or a status change within seconds.

Runs inside the store's push bridge (``python -m central.stock_push``, one per
store) beside the stock and erasure pushes, on the same broker connection. It
polls the newest seq of the store's order log (``order_changes``, written by
:mod:`central.orders` and :mod:`central.order_status`) and, when it grew,
publishes the nudge ``{"seq": N}`` on ``vitrine/v1/<store>/edge/sync/orders``
(:mod:`contract.order_push`). The edge answers by pulling
``/api/v1/stores/<store>/order-changes`` after its cursor (``edge/order_feed.py``);
its periodic pull (``sync_orders_s``) stays the fallback for an edge that was
offline or a store without a bridge. Why a nudge and a pull rather than the
orders on the broker: docs/architecture.md, "Orders between central and stores".
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from central.db import Database
from central.push_loop import NudgeBridge
from contract.order_push import nudge_message

log = logging.getLogger("central.order_push")


def newest_seq(db: Database, store_id: str) -> int:
    """Newest change in ``store_id``'s order log, 0 if none."""
    row = db.run(lambda tx: tx.one("SELECT COALESCE(MAX(seq), 0) AS seq FROM order_changes "
                                   "WHERE store_id = ?", (store_id,)), write=False)
    return int(row["seq"]) if row else 0


class OrderBridge(NudgeBridge):
    """Publishes a nudge whenever the newest order change for its store grows."""

    def __init__(self, db: Database, store_id: str, publish: Callable[[bytes], None], *,
                 interval_s: float = 0.5, backoff_cap_s: float = 30.0) -> None:
        super().__init__(lambda: newest_seq(db, store_id), publish, nudge_message,
                         what=f"order push to {store_id}", log=log, interval_s=interval_s,
                         backoff_cap_s=backoff_cap_s)
        self.db = db
        self.store_id = store_id
