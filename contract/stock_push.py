"""MQTT topic and message of the real-time stock push: what central publishes, the edge reads.

Both parts import it from here (it used to live in ``edge/``, so central imported the
edge: parts meet through ``contract/`` only).

Stock changes reach a store faster than its pull cadence over the store's
broker. The topic sits under ``edge/`` because the broker ACL
(vitrine/provisioning.py) already lets principals of role ``edge`` read and
write ``vitrine/v1/{store}/edge/#``: the publisher is central's bridge (or an
integration process in the store) provisioned with role ``edge``, and the
edge's sync client subscribes with the edge's own credentials. No device role
may write there, so a shelf reader cannot forge stock levels.

Message (JSON, QoS 1)::

    {"items": [{"location": "store-001", "gtin": "09506000134352",
                "quantity": 4, "observed_at": 1763900000.0}, ...]}

``location`` is a store id or the web warehouse. The edge keeps, per
(location, gtin), the newest observation, so a late or replayed message never
overwrites a fresher figure and the message needs no sequence number.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .topics import PREFIX, TopicError, valid_id

MAX_STOCK_MESSAGE_BYTES = 1 << 20
_GTIN = re.compile(r"^[0-9]{14}$")


class StockMessageError(ValueError):
    """A stock push that is not in the documented shape."""


def sync_stock_topic(store_id: str) -> str:
    """``vitrine/v1/{store}/edge/sync/stock``."""
    if not valid_id(store_id):
        raise TopicError(f"invalid store id {store_id!r}")
    return f"{PREFIX}/{store_id}/edge/sync/stock"


def stock_message(items: list[dict[str, Any]]) -> bytes:
    """Encode a push (what central's bridge publishes)."""
    return json.dumps({"items": items}, separators=(",", ":")).encode()


def parse_stock_message(payload: bytes) -> list[dict[str, Any]]:
    """Validated items of a push; raise :class:`StockMessageError` with the reason."""
    if len(payload) > MAX_STOCK_MESSAGE_BYTES:
        raise StockMessageError(f"{len(payload)} bytes > {MAX_STOCK_MESSAGE_BYTES}")
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StockMessageError(f"not JSON: {exc}") from None
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise StockMessageError('expected {"items": [...]}')
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise StockMessageError(f"item {i} is not an object")
        loc, gtin, qty, at = (item.get(k) for k in ("location", "gtin", "quantity",
                                                     "observed_at"))
        if not (isinstance(loc, str) and valid_id(loc)):
            raise StockMessageError(f"item {i}: bad location")
        if not (isinstance(gtin, str) and _GTIN.match(gtin)):
            raise StockMessageError(f"item {i}: bad gtin")
        if not isinstance(qty, int) or isinstance(qty, bool):
            raise StockMessageError(f"item {i}: quantity must be an integer")
        if not isinstance(at, int | float) or isinstance(at, bool):
            raise StockMessageError(f"item {i}: observed_at must be a number")
        out.append({"location": loc, "gtin": gtin, "quantity": qty, "observed_at": float(at)})
    return out
