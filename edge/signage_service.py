"""The edge's side of screens and labels: playlists out, spotlights debounced, prices fanned out.

One :class:`SignageService` per edge, with its own SQLite connection (WAL: it
reads while the writer writes, and writes only ``shelf_labels`` and
``signage_playlists``) and a ``publish`` function onto the store broker. It

* delivers playlists: the store's playlist file (``signage_playlists``, loaded
  with ``vitrine signage playlist load``) is filtered per screen
  (``PlaylistSet.for_screen``) and published as a **retained** ``set_playlist``
  command on the screen's command topic, so a screen that reboots or
  reconnects gets its current playlist from the broker, even while the edge
  is down; a new version replaces it whole (deleted items disappear);
* debounces spotlights (``edge.spotlight``) and enriches each ``show_product``
  with what the screen shows around the price: promotion, previous price,
  image (asset id), stock here (the ``stock`` rule of ``edge.rules`` between
  central's figure and the store's count) and "also online" (the web
  warehouse has it). Nothing about who tapped: the command is built from the
  product only;
* fans out price and promotion changes: :meth:`poll` notices products whose
  ``updated_at`` moved (sync feed, local markdown, reprice) or whose content
  changed, re-sends ``show_product`` to screens spotlighting them, and has the
  label service (``edge.labels``) send new bitmaps to their shelf labels.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from contract.commands import MAX_COMMAND_BYTES, CommandError, SetPlaylist, ShowProduct
from contract.playlists import PlaylistError, PlaylistSet, load_playlists

from .labels import LabelService
from .pipeline import uuid5_str
from .rules import Candidate, Rules
from .spotlight import Debouncer

log = logging.getLogger("vitrine.edge.signage")

#: publish(family, device_id, payload, retain)
Publish = Callable[[str, str, dict[str, Any], bool], None]
WEB_WAREHOUSE = "web-warehouse"


def store_playlists(conn: sqlite3.Connection, text: str | bytes) -> PlaylistSet:
    """Validate and store the store's playlist file (CLI); the service delivers it."""
    playlists = load_playlists(text)
    conn.execute("INSERT INTO signage_playlists (id, doc, version, loaded_at) VALUES "
                 "(1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, "
                 "version = excluded.version, loaded_at = excluded.loaded_at",
                 (json.dumps(playlists.to_dict(), ensure_ascii=False), playlists.version,
                  time.time()))
    return playlists


def set_playlist_command(screen: str, mine: PlaylistSet, ts: float) -> dict[str, Any]:
    """The retained ``set_playlist`` for one screen; :class:`CommandError` if unsendable.

    Also what the panel's playlist editor checks before it stores a change, so an edit
    that would make some screen's set exceed the command cap is refused at the form,
    not discovered later in the edge's log.
    """
    cmd = SetPlaylist(cmd_id=uuid5_str(f"{screen}/{mine.version}"), ts=ts,
                      version=mine.version, playlists=mine.to_dict()).to_payload()
    size = len(json.dumps(cmd, separators=(",", ":")).encode())
    if size > MAX_COMMAND_BYTES:
        raise CommandError(f"playlists for {screen} are {size} bytes, over the"
                           f" {MAX_COMMAND_BYTES}-byte command cap: shorten or split them")
    return cmd


def load_playlist_file(db_path: str, text: str | bytes) -> PlaylistSet:
    """``vitrine signage playlist load``: validate and store a file in the edge's database."""
    from .db import connect, migrate

    db = connect(db_path)
    try:
        migrate(db)
        return store_playlists(db.conn, text)
    finally:
        db.conn.close()


class SignageService:
    def __init__(self, conn: sqlite3.Connection, store_id: str, publish: Publish, *,
                 labels: LabelService | None = None, rules: Rules | None = None,
                 hold_s: float = 15.0, min_show_s: float = 3.0,
                 clock: Callable[[], float] = time.time):
        self.conn = conn
        self.store_id = store_id
        self.publish = publish
        self.labels = labels
        self.rules = rules or Rules()
        self.hold_s = hold_s
        self.debouncer = Debouncer(min_show_s)
        self.clock = clock
        self._lock = threading.Lock()
        self._delivered: dict[str, str] = {}  # screen -> playlist version
        self._playlist_version: str | None = None
        self._spot: dict[str, tuple[str, float]] = {}  # screen -> (gtin, shown until)
        self._products_mark = self._max_updated()
        #: Labels that did not ack get their bitmap again after this long.
        self.resend_s = 60.0
        self._next_resend = clock() + self.resend_s
        self.counters = {"playlists_delivered_total": 0, "spotlights_sent_total": 0,
                         "spotlights_held_total": 0, "price_updates_total": 0}

    # -- playlists ------------------------------------------------------------------------

    def screens(self) -> list[tuple[str, str | None]]:
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT device_id, zone FROM devices WHERE kind = 'signage' ORDER BY device_id")]

    def deliver_playlists(self, force: bool = False) -> int:
        row = self.conn.execute("SELECT doc, version FROM signage_playlists WHERE id = 1"
                                ).fetchone()
        if row is None:
            return 0
        try:
            playlists = load_playlists(row[0])
        except PlaylistError as exc:  # stored by an older version of the CLI?
            log.error("stored playlists do not load: %s", exc)
            return 0
        sent = 0
        for screen, zone in self.screens():
            mine = playlists.for_screen(screen, zone)
            if not force and self._delivered.get(screen) == mine.version:
                continue
            try:
                cmd = set_playlist_command(screen, mine, self.clock())
            except CommandError as exc:
                log.error("playlists for %s not sendable: %s", screen, exc)
                continue
            self.publish("signage", screen, cmd, True)
            self._delivered[screen] = mine.version
            sent += 1
        self.counters["playlists_delivered_total"] += sent
        if sent:
            log.info("playlists version %s delivered to %d screen(s)", row[1], sent)
        return sent

    # -- spotlight ------------------------------------------------------------------------

    def product_view(self, gtin: str) -> dict[str, Any]:
        """What a screen shows about a product (no personal data: product tables only)."""
        out: dict[str, Any] = {}
        row = self.conn.execute("SELECT name, brand, price_cents, currency FROM products "
                                "WHERE gtin = ?", (gtin,)).fetchone()
        if row:
            out.update(name=row[0], brand=row[1], price_cents=row[2], currency=row[3])
        content = self.conn.execute("SELECT promo, was_price_cents, images FROM "
                                    "product_content WHERE gtin = ?", (gtin,)).fetchone()
        if content:
            images = json.loads(content[2])
            out.update(promo=content[0], was_price_cents=content[1],
                       image=images[0] if images else None)
        candidates = []
        count = self.conn.execute("SELECT quantity, counted_at FROM local_stock_counts "
                                  "WHERE gtin = ?", (gtin,)).fetchone()
        if count:
            candidates.append(Candidate("store_count", count[0], count[1]))
        stock = {loc: (q, at) for loc, q, at in self.conn.execute(
            "SELECT location, quantity, observed_at FROM sync_stock WHERE gtin = ?", (gtin,))}
        if self.store_id in stock:
            candidates.append(Candidate("central", *stock[self.store_id]))
        win = self.rules.resolve("stock", candidates, self.clock())
        if win is not None:
            out["stock"] = max(0, int(win.value))
        out["online"] = stock.get(WEB_WAREHOUSE, (0, 0))[0] > 0
        return {k: v for k, v in out.items() if v is not None}

    def _send_spot(self, screen: str, cmd: dict[str, Any], now: float) -> None:
        full = {**cmd, **self.product_view(cmd["gtin"])}
        full.pop("cmd", None)
        self.publish("signage", screen, ShowProduct(**full).to_payload(), False)
        self._spot[screen] = (cmd["gtin"], now + self.hold_s)
        self.counters["spotlights_sent_total"] += 1

    def offer(self, screen: str, cmd: dict[str, Any]) -> None:
        """A ``show_product`` from ``edge.commands``: debounced, enriched, sent."""
        now = self.clock()
        with self._lock:
            allowed = self.debouncer.offer(screen, cmd, now)
            if allowed is None:
                self.counters["spotlights_held_total"] += 1
                return
            self._send_spot(screen, allowed, now)

    # -- changes ----------------------------------------------------------------------------

    def _max_updated(self) -> float:
        row = self.conn.execute(
            "SELECT max(m) FROM (SELECT max(updated_at) AS m FROM products UNION ALL "
            "SELECT max(updated_at) FROM product_content)").fetchone()
        return row[0] or 0.0

    def changed_products(self) -> list[str]:
        mark = self._products_mark
        rows = self.conn.execute(
            "SELECT gtin, updated_at FROM products WHERE updated_at > ? UNION "
            "SELECT gtin, updated_at FROM product_content WHERE updated_at > ?",
            (mark, mark)).fetchall()
        if rows:
            self._products_mark = max(r[1] for r in rows)
        return sorted({r[0] for r in rows})

    def products_changed(self, gtins: list[str]) -> None:
        """Price or promotion of ``gtins`` changed: update screens and labels now."""
        if not gtins:
            return
        now = self.clock()
        wanted = set(gtins)
        with self._lock:
            for screen, (gtin, until) in list(self._spot.items()):
                if gtin in wanted and now < until:
                    cmd = {"cmd": "show_product",
                           "cmd_id": uuid5_str(f"{screen}/{gtin}/{now}"), "ts": now,
                           "gtin": gtin}
                    self._send_spot(screen, cmd, now)
                    self.counters["price_updates_total"] += 1
        if self.labels is not None:
            self.labels.refresh(gtins)

    def poll(self) -> None:
        """Periodic work: new playlists, released spotlights, price/promotion changes."""
        self.deliver_playlists()
        now = self.clock()
        with self._lock:
            for screen, cmd in self.debouncer.due(now):
                self._send_spot(screen, cmd, now)
        self.products_changed(self.changed_products())
        if self.labels is not None:
            self.labels.resend_to_returning()
            if now >= self._next_resend:
                self._next_resend = now + self.resend_s
                self.labels.resend_unacked(self.resend_s)
