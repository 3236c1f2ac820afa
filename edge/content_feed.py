"""Product content from central's catalogue feed: promotion, previous price, pictures.

The catalogue feed's items may carry, besides ``gtin``/``name``/``brand``/
``category``, the content screens and labels show around a price:

* ``promo``: the promotion label ("-20 % cette semaine"), or null;
* ``was_price_cents``: the previous price to strike through, or null;
* ``images``: ``[{"url": "/api/v1/...", "sha256": "<hex>"}, ...]``, the
  product's pictures, first one shown.

Pictures are downloaded from central by the sync thread **before** the
feed's transaction (:func:`fetch_pictures`; a picture already in the asset
cache, by its SHA-256, is not downloaded again) and checked against their
hash; :func:`apply_content` then records the content in the same transaction
as the rest of the feed. A picture that cannot be fetched is left out (the
product keeps its other pictures, a screen draws a placeholder), never
blocking prices. Items without any of these keys leave ``product_content``
alone, so a store's own content (the demo's, a CLI's) survives feeds that
do not carry any.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from .assets import ASSET_ID_RE, AssetCache, AssetError
from .content import set_content

log = logging.getLogger("vitrine.edge.content")
CONTENT_KEYS = ("promo", "was_price_cents", "images")


def fetch_pictures(items: list[dict[str, Any]], get_bytes: Callable[[str], bytes],
                   assets: AssetCache) -> dict[str, list[str]]:
    """Download the items' pictures into the cache; GTIN -> asset ids (in feed order)."""
    out: dict[str, list[str]] = {}
    for item in items:
        images = item.get("images")
        if not isinstance(images, list):
            continue
        ids = []
        for image in images[:8]:
            if not isinstance(image, dict):
                continue
            want = image.get("sha256")
            if isinstance(want, str) and ASSET_ID_RE.match(want) and want in assets:
                ids.append(want)
                continue
            url = image.get("url")
            if not isinstance(url, str) or not url.startswith("/"):
                log.warning("product %s: picture without a central path skipped", item.get("gtin"))
                continue
            try:
                data = get_bytes(url)
                if want and hashlib.sha256(data).hexdigest() != want:
                    raise AssetError("sha256 does not match the bytes received")
                ids.append(assets.put(data))
            except Exception as exc:  # noqa: BLE001 - one picture never fails a feed
                log.warning("product %s: picture %s not fetched: %s", item.get("gtin"),
                            url[:100], exc)
        out[str(item.get("gtin"))] = ids
    return out


def apply_content(conn: sqlite3.Connection, items: list[dict[str, Any]],
                  pictures: dict[str, list[str]], now: float) -> int:
    """Record the content of the items that carry some (inside the feed's transaction)."""
    n = 0
    for item in items:
        if item.get("deleted") or not any(k in item for k in CONTENT_KEYS):
            continue
        promo = item.get("promo")
        was = item.get("was_price_cents")
        set_content(conn, item["gtin"],
                    promo=promo[:200] if isinstance(promo, str) else None,
                    was_price_cents=was if isinstance(was, int) and not isinstance(was, bool)
                    and was >= 0 else None,
                    images=pictures.get(str(item["gtin"]), []), now=now)
        n += 1
    return n
