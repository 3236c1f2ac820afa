"""Storage of the feeds central sends to the edges: catalogue, prices, stock.

Every feed has one version counter (``feed_versions``) and every row carries
the version of its last change. A write takes the counter's row lock
(``UPDATE ... RETURNING``), numbers its rows ``base+1 .. base+n`` and commits:
because the lock is held until commit, a reader that sees counter value ``C``
also sees every row with a version up to ``C``. An edge that asks for "what
changed after version N" therefore never skips a row committed late, and rows
have distinct versions, so a long delta can be paged by version alone.

Deletions are tombstones (``deleted = 1`` and a new version) so that deltas
carry them; a full feed leaves them out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from central.db import Tx
from contract.central_api import media_path


@dataclass(frozen=True)
class FeedSpec:
    """How one feed is stored: table, natural key, columns and their PostgreSQL types."""

    name: str
    table: str
    key: tuple[str, ...]
    data: tuple[str, ...]
    pg_types: Mapping[str, str] = field(default_factory=dict)
    #: Tombstones possible (``deleted`` column); stock levels are only ever overwritten.
    deletable: bool = True
    #: Per-store feed: rows whose ``store_id`` is the store or ``'*'`` (every store).
    store_scoped: bool = False
    #: Keep the row with the newest value of this column (an older count never wins).
    newest_by: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        extra = ("deleted", "version", "updated_at") if self.deletable else ("version",)
        return (*self.key, *self.data, *extra)


CATALOGUE = FeedSpec("catalogue", "catalogue_products", ("gtin",),
                     ("name", "brand", "category", "content"))
PRICES = FeedSpec("prices", "price_entries", ("store_id", "gtin", "kind", "valid_from"),
                  ("valid_to", "price_cents", "currency", "label"),
                  {"valid_from": "float8", "valid_to": "float8", "price_cents": "int8"},
                  store_scoped=True)
STOCK = FeedSpec("stock", "stock_levels", ("location", "gtin"), ("quantity", "observed_at"),
                 {"quantity": "int8", "observed_at": "float8"}, deletable=False,
                 newest_by="observed_at")
FEEDS: dict[str, FeedSpec] = {s.name: s for s in (CATALOGUE, PRICES, STOCK)}
_COMMON_TYPES = {"deleted": "int2", "version": "int8", "updated_at": "float8"}


def _present_content(item: dict[str, Any]) -> None:
    """The stored ``content`` JSON as the feed's ``promo``, ``was_price_cents`` and
    ``images`` (``[{"url", "sha256"}]``); left out when the load said nothing."""
    raw = item.pop("content", None)
    if not raw:
        return
    content = json.loads(raw)
    item["promo"] = content.get("promo")
    item["was_price_cents"] = content.get("was_price_cents")
    item["images"] = [{"url": media_path(sha), "sha256": sha}
                      for sha in content.get("images") or []]


def content_images(items: Iterable[Mapping[str, Any]]) -> set[str]:
    """Picture ids named by catalogue upserts (what must exist before they are stored)."""
    out: set[str] = set()
    for item in items:
        if item.get("content"):
            out.update(json.loads(item["content"]).get("images") or [])
    return out


def current_version(tx: Tx, feed: str) -> int:
    row = tx.one("SELECT version FROM feed_versions WHERE feed = ?", (feed,))
    return int(row["version"])


def _reserve(tx: Tx, feed: str, n: int) -> int:
    """Take ``n`` versions; return the first. Holds the counter lock until commit."""
    row = tx.one("UPDATE feed_versions SET version = version + ? WHERE feed = ? "
                 "RETURNING version", (n, feed))
    return int(row["version"]) - n + 1


def _upsert(tx: Tx, spec: FeedSpec, rows: Sequence[Sequence[Any]]) -> None:
    cols = spec.columns
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in spec.key)
    conflict = f"ON CONFLICT ({', '.join(spec.key)}) DO UPDATE SET {updates}"
    if spec.newest_by:
        conflict += f" WHERE {spec.table}.{spec.newest_by} <= excluded.{spec.newest_by}"
    if tx.dialect == "postgres":
        # One typed array per column: constant statement text whatever the row count.
        types = {**_COMMON_TYPES, **spec.pg_types}
        casts = ", ".join(f"%b::{types.get(c, 'text')}[]" for c in cols)
        arrays = [list(col) for col in zip(*rows, strict=True)]
        tx.conn.execute(f"INSERT INTO {spec.table} ({', '.join(cols)}) "
                        f"SELECT * FROM unnest({casts}) {conflict}", arrays)
        return
    marks = ", ".join("?" * len(cols))
    tx.conn.executemany(f"INSERT INTO {spec.table} ({', '.join(cols)}) VALUES ({marks}) "
                        f"{conflict}", rows)


def write(tx: Tx, spec: FeedSpec, upserts: Iterable[Mapping[str, Any]],
          deletes: Iterable[Mapping[str, Any]], now: float) -> int:
    """Apply validated changes to ``spec``'s table; return the feed's new version.

    A key given twice keeps its last occurrence (deletes after upserts), which
    also keeps PostgreSQL's ``ON CONFLICT`` from touching one row twice.
    """
    changes: dict[tuple[Any, ...], tuple[Mapping[str, Any], bool]] = {}
    for item in upserts:
        changes[tuple(item[k] for k in spec.key)] = (item, False)
    for item in deletes:
        changes[tuple(item[k] for k in spec.key)] = (item, True)
    if not changes:
        return current_version(tx, spec.name)
    base = _reserve(tx, spec.name, len(changes))
    rows: list[tuple[Any, ...]] = []
    for offset, (key, (item, deleted)) in enumerate(changes.items()):
        data = tuple(None if deleted else item.get(c) for c in spec.data)
        tail = (int(deleted), base + offset, now) if spec.deletable else (base + offset,)
        rows.append((*key, *data, *tail))
    _upsert(tx, spec, rows)
    return base + len(changes) - 1


def read(tx: Tx, spec: FeedSpec, store_id: str, since: int, limit: int) -> dict[str, Any]:
    """One page of the feed for ``store_id`` after version ``since``.

    ``since`` 0 (or beyond the counter, e.g. central restored from a backup)
    gives the full feed without tombstones, ``full: true``. ``version`` is the
    cursor for the next call; ``more`` says another page follows.
    """
    current = current_version(tx, spec.name)  # read first: see the module docstring
    full = since <= 0 or since > current
    start = 0 if full else since
    where = "version > ? AND version <= ?"
    params: list[Any] = [start, current]
    if full and spec.deletable:
        where += " AND deleted = 0"
    if spec.store_scoped:
        where += " AND store_id IN (?, '*')"
        params.append(store_id)
    cols = [c for c in spec.columns if c != "updated_at"]
    found = tx.all(f"SELECT {', '.join(cols)} FROM {spec.table} WHERE {where} "
                   f"ORDER BY version LIMIT ?", [*params, limit + 1])
    more = len(found) > limit
    items = []
    for row in found[:limit]:
        item = {c: row[c] for c in cols}
        if spec.deletable:
            item["deleted"] = bool(item["deleted"])
        if spec is CATALOGUE:
            _present_content(item)
        items.append(item)
    cursor = items[-1]["version"] if more else current
    return {"feed": spec.name, "full": full, "version": int(cursor), "more": more,
            "items": items}
