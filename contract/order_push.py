"""MQTT topic of the order nudge: central's bridge nudges, the edge pulls its order changes.

A status change made in central (the web shop marks an order paid, an operator
cancels it) or a web order for pickup in a store must reach that store within
seconds. The push bridge (``central/order_push.py``, in the same process as the
stock and erasure pushes) publishes on ``vitrine/v1/{store}/edge/sync/orders``
(QoS 1; under ``edge/``, where only principals of role ``edge`` may write) the same
nudge as the erasure push (:mod:`contract.erasure_push`)::

    {"seq": 42}

"central holds order changes for this store up to seq 42": the edge then pulls
``GET /api/v1/stores/{store}/order-changes?since=<its cursor>`` over its
authenticated HTTP link (``edge/order_feed.py``) and applies what it has not
applied. Orders, customer ids and pickup codes never travel on the store broker;
a forged or replayed nudge costs one pull.
"""

from __future__ import annotations

from .erasure_push import ErasureMessageError as NudgeError
from .erasure_push import erasure_message as nudge_message
from .erasure_push import parse_erasure_message as parse_nudge
from .topics import PREFIX, TopicError, valid_id

__all__ = ["NudgeError", "nudge_message", "parse_nudge", "sync_orders_topic"]


def sync_orders_topic(store_id: str) -> str:
    """``vitrine/v1/{store}/edge/sync/orders``."""
    if not valid_id(store_id):
        raise TopicError(f"invalid store id {store_id!r}")
    return f"{PREFIX}/{store_id}/edge/sync/orders"
