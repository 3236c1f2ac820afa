"""Applying central's feeds to the edge's local copy, inside the caller's transaction.

One applier per feed (catalogue, prices, stock) writes the ``sync_*`` tables and
returns the GTINs it touched; :func:`materialise` then rewrites those rows of
``products`` (what enrichment and kiosks read) with the effective price decided
by :mod:`edge.rules`, so the store shows the same price as every channel unless a
rule says otherwise.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from .rules import Candidate, PriceEntry, Rules, central_price, next_change

_KEYS = {"catalogue": ("gtin",), "prices": ("store_id", "gtin", "kind", "valid_from"),
         "stock": ("location", "gtin")}


def _latest(feed: str, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Last change per key, in version order (pages may repeat a key)."""
    by_key = {tuple(i[k] for k in _KEYS[feed]): i for i in items}
    return list(by_key.values())


def apply_catalogue(conn: sqlite3.Connection, items: list[dict[str, Any]], full: bool
                    ) -> set[str]:
    """Update ``sync_catalogue``; drop from ``products`` what central no longer sells."""
    items = _latest("catalogue", items)
    before = {r[0] for r in conn.execute("SELECT gtin FROM sync_catalogue")} if full else set()
    if full:
        conn.execute("DELETE FROM sync_catalogue")
    gone = {i["gtin"] for i in items if i.get("deleted")}
    live = [i for i in items if not i.get("deleted")]
    conn.executemany("INSERT INTO sync_catalogue (gtin, name, brand, category, version) "
                     "VALUES (:gtin, :name, :brand, :category, :version) ON CONFLICT (gtin) "
                     "DO UPDATE SET name = excluded.name, brand = excluded.brand, "
                     "category = excluded.category, version = excluded.version", live)
    removed = (before - {i["gtin"] for i in live}) | gone
    conn.executemany("DELETE FROM sync_catalogue WHERE gtin = ?", [(g,) for g in gone])
    conn.executemany("DELETE FROM products WHERE gtin = ?", [(g,) for g in removed])
    return {i["gtin"] for i in live} | removed


def apply_prices(conn: sqlite3.Connection, items: list[dict[str, Any]], full: bool
                 ) -> set[str]:
    items = _latest("prices", items)
    touched = {r[0] for r in conn.execute("SELECT gtin FROM sync_prices")} if full else set()
    if full:
        conn.execute("DELETE FROM sync_prices")
    conn.executemany("DELETE FROM sync_prices WHERE store_id = :store_id AND gtin = :gtin AND "
                     "kind = :kind AND valid_from = :valid_from",
                     [i for i in items if i.get("deleted")])
    conn.executemany(
        "INSERT INTO sync_prices (store_id, gtin, kind, valid_from, valid_to, price_cents, "
        "currency, label, version) VALUES (:store_id, :gtin, :kind, :valid_from, :valid_to, "
        ":price_cents, :currency, :label, :version) ON CONFLICT (store_id, gtin, kind, "
        "valid_from) DO UPDATE SET valid_to = excluded.valid_to, price_cents = "
        "excluded.price_cents, currency = excluded.currency, label = excluded.label, "
        "version = excluded.version", [i for i in items if not i.get("deleted")])
    return touched | {i["gtin"] for i in items}


_STOCK_UPSERT = ("INSERT INTO sync_stock (location, gtin, quantity, observed_at) VALUES "
                 "(:location, :gtin, :quantity, :observed_at) ON CONFLICT (location, gtin) DO "
                 "UPDATE SET quantity = excluded.quantity, observed_at = excluded.observed_at "
                 "WHERE sync_stock.observed_at <= excluded.observed_at")


def apply_stock(conn: sqlite3.Connection, items: list[dict[str, Any]], full: bool) -> set[str]:
    """Newest observation wins per (location, gtin), whether pulled or pushed."""
    items = _latest("stock", items)
    if full:
        keep = {(i["location"], i["gtin"]) for i in items}
        stale = [k for k in conn.execute("SELECT location, gtin FROM sync_stock")
                 if tuple(k) not in keep]
        conn.executemany("DELETE FROM sync_stock WHERE location = ? AND gtin = ?", stale)
    conn.executemany(_STOCK_UPSERT, items)
    return {i["gtin"] for i in items}


APPLIERS: dict[str, Callable[[sqlite3.Connection, list[dict[str, Any]], bool], set[str]]] = {
    "catalogue": apply_catalogue, "prices": apply_prices, "stock": apply_stock}


def _chunks(values: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def materialise(conn: sqlite3.Connection, store_id: str, rules: Rules,
                gtins: Iterable[str] | None, now: float) -> float:
    """Rewrite ``products`` for ``gtins`` (None: all); return the next price change time.

    Products central sells get name/brand/category from the catalogue and the
    price the ``price`` rule picks between central's price list and a local
    markdown. Products known only locally (seeded from the layout) go back to
    their seeded price (``layout_price_cents``) when neither central nor a
    markdown has one, e.g. once a markdown is removed.
    """
    if gtins is None:
        wanted = sorted({r[0] for r in conn.execute(
            "SELECT gtin FROM sync_catalogue UNION SELECT gtin FROM sync_prices "
            "UNION SELECT gtin FROM local_markdowns")})
    else:
        wanted = sorted(set(gtins))
    soonest = math.inf
    for chunk in _chunks(wanted):
        marks = ",".join("?" * len(chunk))
        cat = {r[0]: r for r in conn.execute(
            f"SELECT gtin, name, brand, category FROM sync_catalogue WHERE gtin IN ({marks})",
            chunk)}
        entries: dict[str, list[PriceEntry]] = {}
        for r in conn.execute(f"SELECT gtin, store_id, kind, price_cents, valid_from, valid_to, "
                              f"currency, label FROM sync_prices WHERE gtin IN ({marks})", chunk):
            entries.setdefault(r[0], []).append(PriceEntry(*r[1:]))
        layout_prices = dict(conn.execute(
            f"SELECT gtin, layout_price_cents FROM products WHERE gtin IN ({marks})", chunk))
        marks_rows = {r[0]: r for r in conn.execute(
            f"SELECT gtin, price_cents, valid_from, valid_to, set_at FROM local_markdowns "
            f"WHERE gtin IN ({marks})", chunk)}
        for gtin in chunk:
            price = central_price(entries.get(gtin, []), store_id, now)
            candidates = []
            if price is not None:
                candidates.append(Candidate("central", price.price_cents, price.valid_from))
            md = marks_rows.get(gtin)
            md_entries = []
            if md is not None:
                md_entries = [PriceEntry("*", "markdown", md[1], md[2], md[3])]
                if md_entries[0].valid_at(now):
                    candidates.append(Candidate("local_markdown", md[1], md[4]))
            soonest = min(soonest, next_change([*entries.get(gtin, []), *md_entries], now))
            win = rules.resolve("price", candidates, now)
            # Neither central nor a markdown: the layout's seeded price, if any.
            cents = win.value if win else layout_prices.get(gtin)
            currency = price.currency if price else "EUR"
            if gtin in cat:
                _, name, brand, category = cat[gtin]
                conn.execute(
                    "INSERT INTO products (gtin, name, brand, category, price_cents, currency, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gtin) DO UPDATE SET "
                    "name = excluded.name, brand = excluded.brand, category = excluded.category,"
                    " price_cents = excluded.price_cents, currency = excluded.currency, "
                    "updated_at = excluded.updated_at",
                    (gtin, name, brand, category, cents, currency, now))
            elif cents is not None:
                conn.execute("UPDATE products SET price_cents = ?, currency = ?, updated_at = ? "
                             "WHERE gtin = ?", (cents, currency, now, gtin))
    return soonest
