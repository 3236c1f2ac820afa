"""Paging through central's feeds: the versioned ones (catalogue, prices, stock) and the
append-only logs a store follows by seq (erasure orders, order changes).

Every page is fetched before anything is applied, so a feed that fails half-way
changes nothing locally (``edge/sync.py`` applies the result in one transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

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


class FeedReader(Protocol):
    """What the log pagers need of :class:`edge.central_client.CentralReader`."""

    def get(self, path: str) -> dict[str, Any]: ...


def fetch_log(reader: FeedReader, path_of: Callable[[int, int], str], key: str, since: int,
              page_size: int, max_pages: int = 1000) -> tuple[list[dict[str, Any]], int]:
    """Every entry of a seq-ordered log after ``since``, and the new cursor.

    ``path_of(cursor, page_size)`` names a page; each page lists its entries under
    ``key`` and the cursor to continue from under ``next``; a short page is the last.
    """
    entries: list[dict[str, Any]] = []
    cursor = since
    for _ in range(max_pages):
        page = reader.get(path_of(cursor, page_size))
        items = page.get(key, [])
        entries += items
        cursor = int(page.get("next", cursor))
        if len(items) < page_size:
            break
    return entries, cursor
