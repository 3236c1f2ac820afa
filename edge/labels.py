"""The label service: renders each shelf label, sends changed bitmaps, records what is on the shelf.

Like an ESL access point, the edge does the work and the label only displays:

* :meth:`LabelService.refresh` renders every label of the given products (all
  by default) with ``edge.label_render`` from the current price
  (``products``), promotion and image (``product_content``), packs it
  (``contract.eslabel``) and, when the hash differs from the one the label
  should show, publishes a ``label_bitmap`` command to that label and records
  the new wanted hash and price. Called after a price or promotion change
  (sync feed, local markdown) and at start, so a change reaches the shelf
  immediately, not at the next tap.
* :meth:`LabelService.acked` records the hash a label reports displaying:
  the edge then knows, per label, which price is actually on the shelf;
  :meth:`LabelService.out_of_date` lists the labels whose shelf price differs
  from the wanted one (what the panel will show staff).
* Labels with the same product, size and content share one render (they are
  identical), so 1,000 price changes cost 1,000 renders however many labels
  show each product.

Commands are not stored (like signage commands): a label that missed one is
out of date until :meth:`resend_unacked` or the next refresh sends it again.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import Any

from PIL import Image

from contract.commands import CommandError
from contract.commands import LabelBitmap as LabelBitmapCommand
from contract.eslabel import SIZES, LabelBitmap, encode_planes

from .assets import AssetCache
from .content import load_content
from .db import immediate
from .label_render import DEFAULT_DIGITAL_LINK_BASE, LabelContent, render_and_pack
from .label_reports import record_label_report

log = logging.getLogger("vitrine.edge.labels")

#: publish(family, device_id, payload): sends one command (QoS 1) to a device.
Publish = Callable[[str, str, dict[str, Any]], None]


def seed_labels(conn: sqlite3.Connection, layout: dict[str, Any]) -> int:
    """Register the layout's ``shelf_label`` devices with their product and size (upsert)."""
    rows = []
    for d in layout.get("devices", []):
        if d.get("kind") != "shelf_label" or not d.get("gtin"):
            continue
        size = d.get("size") or "2.9"
        if size not in SIZES:
            raise ValueError(f"label {d['id']}: unknown size {size!r} (one of {sorted(SIZES)})")
        rows.append((d["id"], d["gtin"], size, d.get("zone")))
    # Only what changed: an edge restarted on a full disk must not fail on a no-op.
    have = {r[0]: tuple(r[1:]) for r in conn.execute(
        "SELECT device_id, gtin, size, zone FROM shelf_labels")}
    listed = len(rows)
    rows = [r for r in rows if have.get(r[0]) != r[1:]]
    if not rows:
        return listed
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO shelf_labels (device_id, gtin, size, zone) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (device_id) DO UPDATE SET gtin = excluded.gtin, size = excluded.size,"
        " zone = excluded.zone", rows)
    if own:
        conn.execute("COMMIT")
    return listed


class LabelService:
    def __init__(self, conn: sqlite3.Connection, publish: Publish, *,
                 assets: AssetCache | None = None,
                 digital_link_base: str = DEFAULT_DIGITAL_LINK_BASE,
                 clock: Callable[[], float] = time.time):
        self.conn = conn
        self.publish = publish
        self.assets = assets
        self.digital_link_base = digital_link_base
        self.clock = clock
        self.counters = {"rendered_total": 0, "sent_total": 0, "acked_total": 0,
                         "refused_total": 0, "stale_acks_total": 0}

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One transaction (the edge's connections are in autocommit mode)."""
        with immediate(self.conn):
            yield

    def _image(self, asset_id: str | None) -> Image.Image | None:
        if asset_id is None or self.assets is None:
            return None
        data = self.assets.get(asset_id)
        if data is None:
            return None
        try:
            im = Image.open(BytesIO(data))
            im.load()
            return im
        except (OSError, ValueError):
            log.warning("asset %s is not a readable image; label drawn without it", asset_id)
            return None

    def contents(self, gtins: Iterable[str] | None = None
                 ) -> dict[str, tuple[LabelContent, int | None]]:
        """Per GTIN with labels: what its labels show, and the price in it."""
        wanted = None if gtins is None else sorted(set(gtins))
        rows = []
        if wanted is None:
            rows = self.conn.execute(
                "SELECT DISTINCT p.gtin, p.name, p.brand, p.price_cents, p.currency "
                "FROM products p JOIN shelf_labels l ON l.gtin = p.gtin").fetchall()
        else:
            for g in wanted:
                rows += self.conn.execute(
                    "SELECT gtin, name, brand, price_cents, currency FROM products "
                    "WHERE gtin = ?", (g,)).fetchall()
        extra = load_content(self.conn, [r[0] for r in rows])
        out = {}
        for gtin, name, brand, price, currency in rows:
            c = extra.get(gtin)
            out[gtin] = (LabelContent(
                gtin, name, brand, price, currency, promo=c.promo if c else None,
                was_price_cents=c.was_price_cents if c else None,
                image_key=c.image if c else None,
                digital_link_base=self.digital_link_base), price)
        return out

    def refresh(self, gtins: Iterable[str] | None = None) -> int:
        """Render the labels of ``gtins`` (all: None) and send those that changed."""
        contents = self.contents(gtins)
        if not contents:
            return 0
        marks = ",".join("?" * len(contents))
        labels = self.conn.execute(
            f"SELECT device_id, gtin, size, want_hash FROM shelf_labels WHERE gtin IN ({marks})",
            list(contents)).fetchall()
        renders: dict[tuple[str, str], LabelBitmap] = {}
        now = self.clock()
        updates = []
        outgoing: list[tuple[str, dict[str, Any]]] = []
        for device_id, gtin, size, want_hash in labels:
            content, price = contents[gtin]
            key = (gtin, size)
            bitmap = renders.get(key)
            if bitmap is None:
                image = self._image(content.image_key) if size == "4.2" else None
                bitmap = renders[key] = render_and_pack(content, size, image)
                self.counters["rendered_total"] += 1
            if bitmap.hash == want_hash:
                continue
            try:
                cmd = self.command(device_id, content, price, bitmap, now)
            except CommandError as exc:  # e.g. a picture too busy to fit a command
                self.counters["refused_total"] += 1
                log.error("label %s: bitmap not sendable: %s", device_id, exc)
                continue
            outgoing.append((device_id, cmd))
            updates.append((bitmap.hash, price, now, device_id))
        # What each label should show is committed BEFORE the commands go out: a fast
        # label's report must find the hash it acknowledges already wanted, or its
        # shelf price would be recorded as unknown.
        with self._tx():
            self.conn.executemany("UPDATE shelf_labels SET want_hash = ?, want_price_cents = ?,"
                                  " sent_at = ? WHERE device_id = ?", updates)
        for device_id, cmd in outgoing:
            self.publish("label", device_id, cmd)
        sent = len(outgoing)
        self.counters["sent_total"] += sent
        if sent:
            log.info("labels: %d bitmap(s) sent for %d product(s)", sent, len(contents))
        return sent

    @staticmethod
    def command(device_id: str, content: LabelContent, price: int | None,
                bitmap: LabelBitmap, now: float) -> dict[str, Any]:
        """The ``label_bitmap`` command (checked against command.json: CommandError if not)."""
        return LabelBitmapCommand(
            cmd_id=f"{device_id}-{bitmap.hash[:24]}", ts=now, gtin=content.gtin,
            width=bitmap.width, height=bitmap.height, planes=encode_planes(bitmap),
            hash=bitmap.hash, price_cents=price, currency=content.currency).to_payload()

    def acked(self, device_id: str, shown_hash: str, at: float | None = None) -> bool:
        """A label reports the hash it displays; True when it is the wanted one.

        The edge's pipeline records reports arriving over MQTT itself
        (``edge.label_reports``); this is the same rule for callers holding
        this service (tests, tools).
        """
        at = self.clock() if at is None else at
        with self._tx():
            outcome = record_label_report(self.conn, device_id,
                                          {"ok": True, "hash": shown_hash}, at)
        if outcome == "current":
            self.counters["acked_total"] += 1
        elif outcome == "stale":
            self.counters["stale_acks_total"] += 1
        return outcome == "current"

    def refused(self, device_id: str, error: str) -> None:
        """A label could not use a bitmap (hash mismatch, bad planes): counted, kept, resent."""
        with self._tx():
            record_label_report(self.conn, device_id, {"ok": False, "error": error},
                                self.clock())
        self.counters["refused_total"] += 1

    def out_of_date(self) -> list[dict[str, Any]]:
        """Labels whose shelf price is not (yet) the wanted one."""
        rows = self.conn.execute(
            "SELECT device_id, gtin, want_price_cents, acked_price_cents, sent_at, acked_at "
            "FROM shelf_labels WHERE want_hash IS NOT NULL AND "
            "(acked_hash IS NULL OR acked_hash != want_hash) ORDER BY device_id").fetchall()
        keys = ("device_id", "gtin", "want_price_cents", "acked_price_cents", "sent_at",
                "acked_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def resend_to_returning(self, grace_s: float = 0.0) -> int:
        """Resend to labels that came online after their bitmap was sent and did not ack.

        A label that was off (battery change, out of range, not yet connected) when
        its bitmap was published missed it; its birth updates ``devices.last_seen``,
        which is how the edge notices it is back.
        """
        rows = self.conn.execute(
            "SELECT l.device_id, l.gtin FROM shelf_labels l JOIN devices d "
            "ON d.device_id = l.device_id WHERE l.want_hash IS NOT NULL AND "
            "(l.acked_hash IS NULL OR l.acked_hash != l.want_hash) AND d.state = 'online' "
            "AND d.last_seen > l.sent_at + ?", (grace_s,)).fetchall()
        if not rows:
            return 0
        with self._tx():
            self.conn.executemany("UPDATE shelf_labels SET want_hash = NULL WHERE device_id = ?",
                                  [(r[0],) for r in rows])
        return self.refresh({r[1] for r in rows})

    def resend_unacked(self, older_than_s: float = 60.0) -> int:
        """Send again what labels have not acked after ``older_than_s``."""
        cutoff = self.clock() - older_than_s
        gtins = [r[0] for r in self.conn.execute(
            "SELECT DISTINCT gtin FROM shelf_labels WHERE want_hash IS NOT NULL AND "
            "(acked_hash IS NULL OR acked_hash != want_hash) AND sent_at < ?", (cutoff,))]
        if not gtins:
            return 0
        with self._tx():
            self.conn.execute(
                "UPDATE shelf_labels SET want_hash = NULL WHERE (acked_hash IS NULL OR "
                "acked_hash != want_hash) AND sent_at < ?", (cutoff,))
        return self.refresh(gtins)
