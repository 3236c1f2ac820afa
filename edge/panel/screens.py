"""Screens: what each signage screen shows now, out-of-date labels, playlists, push to a zone.

The edge does not store the commands it sends (they are derived from committed
events, :mod:`edge.commands`), so the panel listens to them: inside the edge
process a :class:`ScreenLog` is one of the node's listeners and keeps, per
screen, the last product it was sent and when; what the screen itself last
reported playing (its proof of play, ``device_latest``) is shown beside it.
Shelf labels whose acknowledged bitmap is not the wanted one (``shelf_labels``,
kept by ``edge/labels.py``) and the store's playlist file
(``signage_playlists``) are read from the database. A manager can push a
product to every screen of a zone at once (a promotion, a product the
competitor advertises): a ``show_product`` per screen handed to the signage
runtime exactly like a tap's, so it is debounced and enriched with the
promotion, stock and picture, with the price the rules chose. Like any screen
command it carries no customer data (``command.json`` forbids it).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.http import http_date
from werkzeug.wrappers import Response

from contract.commands import ShowProduct
from edge.analytics import EFFECTIVE_STATE

from .db import read_db, write_db
from .i18n import gettext as _
from .roles import MANAGER, requires

bp = Blueprint("screens", __name__, url_prefix="/screens")
log = logging.getLogger("vitrine.edge.panel")


class ScreenLog:
    """Last command sent to each screen; fed by the node's event listeners (its thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, dict[str, Any]] = {}
        #: Who last pushed something to each screen from the panel.
        self.pushed: dict[str, str] = {}

    def on_event(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "command.signage" and event.get("device_id") \
                and event.get("cmd") == "show_product":
            with self._lock:
                self._last[event["device_id"]] = {**event, "sent_at": time.time()}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: {**v, "pushed_by": self.pushed.get(k)} for k, v in self._last.items()}


def attach(app: Any, node: Any) -> None:
    """Start listening to ``node``'s commands (called by :func:`edge.panel.create_app`)."""
    log = ScreenLog()
    app.extensions["vitrine_screen_log"] = log
    if node is not None and hasattr(node, "listeners"):
        node.listeners.append(log.on_event)


def _node() -> Any:
    return current_app.extensions.get("vitrine_node")


def _page(status: int = 200) -> tuple[str, int]:
    conn = read_db()
    screens = conn.execute(
        f"SELECT device_id, zone, {EFFECTIVE_STATE} AS status FROM devices"
        " WHERE kind = 'signage' ORDER BY zone, device_id").fetchall()
    products = conn.execute("SELECT gtin, name, price_cents, currency FROM products"
                            " ORDER BY name LIMIT 1000").fetchall()
    zones = sorted({s["zone"] for s in screens if s["zone"]})
    log = current_app.extensions["vitrine_screen_log"]
    # Labels whose shelf price is not (yet) the one the rules want (edge/labels.py).
    stale_labels = conn.execute(
        "SELECT l.device_id, l.gtin, p.name, l.want_price_cents, l.acked_price_cents,"
        " l.sent_at, l.acked_at, l.refused, l.last_error FROM shelf_labels l"
        " LEFT JOIN products p ON p.gtin = l.gtin WHERE l.want_hash IS NOT NULL AND"
        " (l.acked_hash IS NULL OR l.acked_hash != l.want_hash) ORDER BY l.device_id"
        " LIMIT 200").fetchall()
    (labels_total,) = conn.execute("SELECT count(*) FROM shelf_labels").fetchone()
    playlist = conn.execute("SELECT version, loaded_at, doc FROM signage_playlists"
                            " WHERE id = 1").fetchone()
    played = {}
    for device_id, at, payload in conn.execute(
            "SELECT device_id, received_at, payload FROM device_latest WHERE channel = 'play'"):
        try:
            play = json.loads(payload)
        except ValueError:
            continue
        played[device_id] = {"at": at, "item": play.get("item_id"), "kind": play.get("kind"),
                             "trigger": play.get("trigger"), "gtin": play.get("gtin"),
                             "seconds": play.get("duration_s")}
    return render_template("screens.html", screens=screens, showing=log.snapshot(),
                           played=played, previews=preview_rows(conn),
                           server_now=round(time.time(), 3),
                           products=products, zones=zones, stale_labels=stale_labels,
                           labels_total=labels_total, playlist=_playlist_summary(playlist),
                           can_push=getattr(_node(), "bus", None) is not None), status


def _playlist_summary(row: Any) -> dict[str, Any] | None:
    """Version, load time and per playlist its screens/zones and item count."""
    if row is None:
        return None
    try:
        doc = json.loads(row["doc"])
    except ValueError:
        return None
    lists = doc.get("playlists", []) if isinstance(doc, dict) else []
    return {"version": row["version"], "loaded_at": row["loaded_at"],
            "lists": [{"name": p.get("name") or p.get("id") or "",
                       "items": len(p.get("items") or []),
                       "zones": ", ".join(map(str, p.get("zones") or [])),
                       "screens": ", ".join(map(str, p.get("screens") or []))}
                      for p in lists if isinstance(p, dict)]}


@bp.route("/")
@requires(MANAGER)
def index() -> tuple[str, int]:
    return _page()


@bp.route("/push", methods=("POST",))
@requires(MANAGER)
def push() -> Response | tuple[str, int]:
    node = _node()
    bus = getattr(node, "bus", None)
    if bus is None:
        flash(_("Pushing to screens needs the panel inside the edge node."))
        return _page(400)
    zone, gtin = request.form.get("zone", ""), request.form.get("gtin", "")
    conn = read_db()
    product = conn.execute("SELECT gtin, name, brand, price_cents, currency FROM products"
                           " WHERE gtin = ?", (gtin,)).fetchone()
    screens = [r[0] for r in conn.execute("SELECT device_id FROM devices WHERE kind = 'signage'"
                                          " AND zone = ? ORDER BY device_id", (zone,))]
    if product is None or not screens:
        flash(_("Pick a product and a zone that has screens."))
        return _page(400)
    now = time.time()
    signage = getattr(node, "signage", None)
    for screen in screens:
        cmd = ShowProduct(cmd_id=str(uuid.uuid4()), ts=now, zone=zone, gtin=product["gtin"],
                          name=product["name"], brand=product["brand"],
                          price_cents=product["price_cents"],
                          currency=product["currency"]).to_payload()
        if signage is not None:  # like a tap: debounced, enriched (promotion, stock, image)
            signage.route([("signage", screen, cmd)])
        else:
            bus.publish_command("signage", screen, cmd)
        current_app.extensions["vitrine_screen_log"].pushed[screen] = g.user.username
    flash(_("%(name)s sent to %(n)s screen(s) in %(zone)s.", name=product["name"],
            n=len(screens), zone=zone))
    return redirect(url_for("screens.index"))


#: A playlist file is small JSON; media are referenced by asset id, never uploaded here.
MAX_PLAYLIST_BYTES = 256 * 1024


@bp.route("/playlists", methods=("POST",))
@requires(MANAGER)
def playlists() -> Response | tuple[str, int]:
    """Replace the store's playlists; the signage runtime delivers them (retained)."""
    from contract.playlists import PlaylistError
    from edge.signage_service import store_playlists

    request.max_content_length = MAX_PLAYLIST_BYTES + 16 * 1024
    upload = request.files.get("file")
    text = upload.read(MAX_PLAYLIST_BYTES + 1) if upload is not None else b""
    if not text or len(text) > MAX_PLAYLIST_BYTES:
        flash(_("Choose a playlist file (at most 256 KiB)."))
        return _page(400)
    try:
        loaded = store_playlists(write_db(), text)
    except (PlaylistError, ValueError) as exc:
        flash(_("This playlist file was refused: %(why)s", why=str(exc)[:300]))
        return _page(400)
    log.info("panel: %s loaded playlists version %s", g.user.username, loaded.version)
    flash(_("Playlists version %(v)s loaded; screens get them within a second.",
            v=loaded.version))
    return redirect(url_for("screens.index"))


# -- live preview (what each screen shows now: its latest thumbnail, edge/screen_previews.py)


def preview_rows(conn: Any) -> dict[str, Any]:
    """Per screen: when its latest preview arrived, its size and the item it shows."""
    return {r["device_id"]: r for r in conn.execute(
        "SELECT device_id, received_at, item_id, kind, trigger, width, height"
        " FROM screen_previews")}


def preview_times(conn: Any) -> dict[str, float]:
    """Screen -> arrival of its latest preview: what the live stream tells open pages."""
    return {d: at for d, at in conn.execute("SELECT device_id, received_at FROM screen_previews")}


@bp.route("/<device_id>/preview.jpg")
@requires(MANAGER)
def preview(device_id: str) -> Response:
    """The screen's latest thumbnail as it sent it (a JPEG the edge checked on arrival)."""
    row = read_db().execute("SELECT jpeg, received_at FROM screen_previews WHERE device_id = ?",
                            (device_id,)).fetchone()
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if row is None:  # an image all the same, so a page's <img> never shows as broken
        return Response(_placeholder(), mimetype="image/jpeg",
                        headers={**headers, "X-Vitrine-Preview": "none"})
    return Response(bytes(row["jpeg"]), mimetype="image/jpeg",
                    headers={**headers, "Last-Modified": http_date(row["received_at"])})


@functools.cache
def _placeholder() -> bytes:
    """A plain grey 16:9 JPEG: no preview from this screen (yet)."""
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (320, 180), (200, 204, 214)).save(buf, "JPEG", quality=70)
    return buf.getvalue()
