"""Paging through one of central's versioned feeds (catalogue, prices, stock).

Every page is fetched before anything is applied, so a feed that fails half-way
changes nothing locally (``edge/sync.py`` applies the result in one transaction).
"""

from __future__ import annotations

from typing import Any

from contract.central_api import feed_path

from .central_client import CentralReader, SyncError


def fetch_feed(reader: CentralReader, store_id: str, feed: str, since: int,
               page_size: int = 5000, max_pages: int = 10_000
               ) -> tuple[bool, int, list[dict[str, Any]]]:
    """``(full, version, items)``: every page after ``since``, merged, before any apply.

    A full feed walked in pages may see a row again (changed meanwhile) or its
    tombstone on a later page: later versions replace earlier ones by key.
    """
    full: bool | None = None
    cursor = since
    items: list[dict[str, Any]] = []
    for _ in range(max_pages):
        page = reader.get(feed_path(store_id, feed, cursor, page_size))
        if full is None:
            full = bool(page.get("full"))
        items += page.get("items", [])
        cursor = int(page["version"])
        if not page.get("more"):
            return bool(full), cursor, items
    raise SyncError(f"{feed}: more than {max_pages} pages")
