"""Product content for screens and labels: promotion text, previous price, images.

Prices stay where they are (``products``, decided by ``edge/rules.py``); this
table adds what a screen or a label shows around a price: the promotion label
("-20 % cette semaine"), the previous price to strike through, and the ids of
the product's images in the edge's asset cache (``edge/assets.py``). Content
comes from the catalogue feed when central sends it and from the store (the
demo, a CLI); either way the images are stored in the asset cache first, so a
screen or a label never needs central.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from .assets import AssetCache, check_asset_id


@dataclass(frozen=True, slots=True)
class ProductContent:
    gtin: str
    promo: str | None = None
    was_price_cents: int | None = None
    images: tuple[str, ...] = ()

    @property
    def image(self) -> str | None:
        return self.images[0] if self.images else None


def set_content(conn: sqlite3.Connection, gtin: str, *, promo: str | None = None,
                was_price_cents: int | None = None, images: list[str] | None = None,
                now: float | None = None) -> None:
    """Upsert one product's content (images are asset ids already in the cache)."""
    ids = [check_asset_id(i) for i in images or []]
    conn.execute(
        "INSERT INTO product_content (gtin, promo, was_price_cents, images, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (gtin) DO UPDATE SET promo = excluded.promo, "
        "was_price_cents = excluded.was_price_cents, images = excluded.images, "
        "updated_at = excluded.updated_at",
        (gtin, promo, was_price_cents, json.dumps(ids), time.time() if now is None else now))


def add_images(conn: sqlite3.Connection, assets: AssetCache, gtin: str,
               pictures: list[bytes]) -> list[str]:
    """Store pictures in the cache and make them the product's images."""
    ids = [assets.put(p) for p in pictures]
    row = conn.execute("SELECT promo, was_price_cents FROM product_content WHERE gtin = ?",
                       (gtin,)).fetchone()
    set_content(conn, gtin, promo=row[0] if row else None,
                was_price_cents=row[1] if row else None, images=ids)
    return ids


def load_content(conn: sqlite3.Connection, gtins: list[str] | None = None
                 ) -> dict[str, ProductContent]:
    sql = "SELECT gtin, promo, was_price_cents, images FROM product_content"
    rows = conn.execute(sql).fetchall() if gtins is None else [
        r for g in gtins for r in conn.execute(sql + " WHERE gtin = ?", (g,))]
    return {r[0]: ProductContent(r[0], r[1], r[2], tuple(json.loads(r[3]))) for r in rows}
