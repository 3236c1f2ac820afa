"""Erasure push: an online store applies an erasure within seconds, not at its next pull.

Runs inside the store's push bridge (``python -m central.stock_push``, one per
store) beside the stock bridge, on the same broker connection. It polls the
newest erasure order for its store (``seq``) every ``interval_s`` and, when it grew,
publishes a nudge ``{"seq": N}`` on ``vitrine/v1/<store>/edge/sync/erasures``
(:func:`contract.erasure_push.erasure_message`, QoS 1). The edge answers by pulling
the erasure feed at once over its authenticated HTTP link and applying what it
has not applied (``edge/erasure.py``): the orders themselves, with their
customer ids, never travel on the store broker.

No cursor is persisted: at start the bridge nudges once with the current
newest seq, so an order issued while the bridge was down reaches online edges
as soon as it is back (an edge already up to date just pulls nothing). The
edge's periodic pull (``sync_erasures_s``, 5 min) stays the fallback for an
edge that was offline or a store without a bridge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from central.db import Database
from central.push_loop import NudgeBridge
from contract.erasure_push import erasure_message

log = logging.getLogger("central.erasure_push")


def newest_seq(db: Database, store_id: str) -> int:
    """Newest erasure order for ``store_id`` (central sends a store only the customers it
    may hold a copy of: ``erasure_stores``), 0 if none."""
    row = db.run(lambda tx: tx.one("SELECT COALESCE(MAX(seq), 0) AS seq FROM erasure_stores "
                                   "WHERE store_id = ?", (store_id,)), write=False)
    return int(row["seq"]) if row else 0


class ErasureBridge(NudgeBridge):
    """Publishes a nudge whenever the newest erasure order for its store grows."""

    def __init__(self, db: Database, store_id: str, publish: Callable[[bytes], None], *,
                 interval_s: float = 0.5, backoff_cap_s: float = 30.0) -> None:
        super().__init__(lambda: newest_seq(db, store_id), publish, erasure_message,
                         what=f"erasure push to {store_id}", log=log, interval_s=interval_s,
                         backoff_cap_s=backoff_cap_s)
        self.db = db
        self.store_id = store_id
