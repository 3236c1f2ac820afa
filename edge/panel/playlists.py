"""Playlists and schedules, edited from the panel; a promotion pushed to a zone for a while.

A manager creates, edits and deletes playlists (targets: screens or zones;
dayparting, days, date range, priority, or "default") and their items (product
spotlight, promotion, full-screen image, text; a picture uploaded with the item
goes into the edge's asset cache, the one screens fetch from), or takes over a zone's screens
with a promotion for some minutes. Each change rewrites the store's one
playlist document through :mod:`edge.playlist_edits` (validated by the screens'
own rules, refused if another manager changed it meanwhile, refused if a
screen's set would not fit in a command), and the signage runtime publishes
the new retained ``set_playlist`` to each screen within a poll, exactly as
``vitrine signage playlist load`` does.

Every field is checked here first with a translated message (lengths, ids,
times, dates, numbers), then the whole document by
:func:`contract.playlists.parse_playlists`. A spotlight item is filled from the
product tables when saved (name, brand, price, promotion, picture): a screen
never learns anything else, and never anything about a customer.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from PIL import Image
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from contract.playlists import DAYS, PlaylistError, load_playlists, resolve
from contract.qr_image import MAX_FRAME_PIXELS
from contract.screen_items import KINDS, MAX_DURATION_S
from contract.topics import valid_id
from edge import playlist_edits as edits
from edge.assets import MAX_ASSET_BYTES, AssetError, asset_id_of

from .db import read_db, write_db
from .i18n import gettext as _
from .roles import MANAGER, requires
from .scanning import takes_photo

bp = Blueprint("playlists", __name__, url_prefix="/playlists")
log = logging.getLogger("vitrine.edge.panel")
LIMITS = {"title": 120, "body": 600, "badge": 40}
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_ASSET = re.compile(r"^[0-9a-f]{64}$")
_GTIN = re.compile(r"^[0-9]{14}$")


class FormError(ValueError):
    """A field the manager must correct (message translated, safe to show)."""


# -- reading the forms -------------------------------------------------------------------
def _duration(form: Any) -> float:
    raw = form.get("duration_s", "").strip() or "10"
    try:
        value = float(raw)
    except ValueError:
        raise FormError(_("Duration must be a number of seconds.")) from None
    if not 1 <= value <= MAX_DURATION_S:
        raise FormError(_("Duration must be from 1 to %(max)s seconds.",
                          max=int(MAX_DURATION_S)))
    return value


def _text(form: Any, name: str) -> str | None:
    value = form.get(name, "").strip()
    if len(value) > LIMITS[name]:
        raise FormError(_("The %(field)s is too long (at most %(n)s characters).",
                          field=_(name), n=LIMITS[name]))
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise FormError(_("The %(field)s holds control characters.", field=_(name)))
    return value or None


def _image(form: Any) -> str | None:
    value = form.get("image", "").strip().lower()
    if value and not _ASSET.match(value):
        raise FormError(_("Image must be the SHA-256 id of a picture in the edge's cache."))
    return value or None


def _uploaded_picture() -> bytes | None:
    """A picture sent with the item form (``image_file``), checked: JPEG or PNG, at most
    8 MiB and 4096 x 4096 pixels, decodable. Stored only once the whole item is valid."""
    upload = request.files.get("image_file")
    if upload is None or not upload.filename:
        return None
    if _assets() is None:
        raise FormError(_("Uploading pictures needs the panel inside the edge node."))
    data = upload.read(MAX_ASSET_BYTES + 1)
    if len(data) > MAX_ASSET_BYTES:
        raise FormError(_("The picture is too large (at most 8 MiB)."))
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, size = img.format, img.size
            if fmt in ("JPEG", "PNG") and size[0] * size[1] <= MAX_FRAME_PIXELS:
                img.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        fmt = None
    if fmt not in ("JPEG", "PNG"):
        raise FormError(_("The picture must be a JPEG or PNG image."))
    if size[0] * size[1] > MAX_FRAME_PIXELS:
        raise FormError(_("The picture is too large (at most 4096 x 4096 pixels)."))
    return data


def _assets() -> Any:
    """The edge's asset cache (the one screens fetch from), when inside the edge node."""
    return getattr(current_app.extensions.get("vitrine_node"), "assets", None)


def _product(gtin: str) -> dict[str, Any]:
    """What a spotlight shows of a product: the product tables, nothing else."""
    if not _GTIN.match(gtin):
        raise FormError(_("Pick a product."))
    conn = read_db()
    row = conn.execute("SELECT gtin, name, brand, price_cents, currency FROM products"
                       " WHERE gtin = ?", (gtin,)).fetchone()
    if row is None:
        raise FormError(_("Pick a product."))
    out: dict[str, Any] = {"gtin": gtin, "name": row["name"], "brand": row["brand"],
                           "price_cents": row["price_cents"], "currency": row["currency"]}
    content = conn.execute("SELECT promo, was_price_cents, images FROM product_content"
                           " WHERE gtin = ?", (gtin,)).fetchone()
    if content is not None:
        images = json.loads(content["images"] or "[]")
        out.update(promo=content["promo"], was_price_cents=content["was_price_cents"],
                   image=images[0] if images else None)
    return {k: v for k, v in out.items() if v is not None}


def item_from_form(form: Any, item_id: str | None = None) -> dict[str, Any]:
    """One playlist item from the item form (``kind`` and that kind's fields)."""
    kind = form.get("kind", "")
    if kind not in KINDS:
        raise FormError(_("Choose what the item shows."))
    item: dict[str, Any] = {"kind": kind, "id": item_id or f"{kind}-{uuid.uuid4().hex[:8]}",
                            "duration_s": _duration(form)}
    picture = _uploaded_picture() if kind in ("promotion", "image") else None
    if picture is not None:  # the uploaded picture replaces a typed or chosen id
        form = MultiDict(form)
        form["image"] = asset_id_of(picture)
    if kind == "spotlight":
        item.update(_product(form.get("gtin", "")))
    elif kind == "promotion":
        item.update(title=_text(form, "title"), body=_text(form, "body"),
                    badge=_text(form, "badge"), image=_image(form))
        if not (item["title"] or item["body"] or item["image"]):
            raise FormError(_("A promotion needs a title, a text or an image."))
    elif kind == "text":
        item.update(title=_text(form, "title"), body=_text(form, "body"))
        if not (item["title"] or item["body"]):
            raise FormError(_("A text item needs a title or a text."))
    else:
        item["image"] = _image(form)
        if not item["image"]:
            raise FormError(_("An image item needs an image."))
    if picture is not None:
        try:
            _assets().put(picture)
        except AssetError as exc:
            raise FormError(_("The picture could not be stored: %(why)s",
                              why=str(exc)[:200])) from None
    return {k: v for k, v in item.items() if v is not None}


def _ids(form: Any, name: str, allowed: set[str]) -> list[str]:
    values = [v for v in form.getlist(name) if v]
    if len(values) > 200 or any(v not in allowed for v in values):
        raise FormError(_("Pick %(what)s from the list.", what=_(name)))
    return sorted(set(values))


def settings_from_form(form: Any, screens: set[str], zones: set[str]) -> dict[str, Any]:
    """Targets, priority, default flag and schedule of a playlist."""
    out: dict[str, Any] = {}
    raw = form.get("priority", "").strip() or "0"
    if not re.fullmatch(r"-?[0-9]{1,4}", raw) or not -1000 <= int(raw) <= 1000:
        raise FormError(_("Priority must be a whole number from -1000 to 1000."))
    out["priority"] = int(raw)
    out["screens"] = _ids(form, "screens", screens)
    out["zones"] = _ids(form, "zones", zones | {"*"})
    if not out["screens"] and not out["zones"]:
        raise FormError(_("Choose the screens or zones this playlist plays on."))
    if form.get("default"):
        out["default"] = True
        return {k: v for k, v in out.items() if v != []}
    schedule: dict[str, Any] = {}
    days = form.getlist("days")
    if any(d not in DAYS for d in days):
        raise FormError(_("Pick days from the list."))
    if days and len(set(days)) < 7:
        schedule["days"] = [d for d in DAYS if d in days]
    elif not days:
        raise FormError(_("Pick at least one day."))
    start, end = form.get("from", "").strip(), form.get("to", "").strip()
    if start or end:
        if not (_HHMM.match(start) and _HHMM.match(end)):
            raise FormError(_("Times must be HH:MM, both of them."))
        if start == end:
            raise FormError(_("From and to are the same time."))
        schedule.update({"from": start, "to": end})
    for key in ("start_date", "end_date"):
        value = form.get(key, "").strip()
        if value:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
                raise FormError(_("Dates must be YYYY-MM-DD."))
            try:
                schedule[key] = date.fromisoformat(value).isoformat()
            except ValueError:
                raise FormError(_("Dates must be YYYY-MM-DD.")) from None
    if schedule.get("start_date", "") > schedule.get("end_date", "9999"):
        raise FormError(_("The first day is after the last day."))
    if schedule:
        out["schedule"] = schedule
    return {k: v for k, v in out.items() if v != []}


# -- the pages -----------------------------------------------------------------------------
def _targets() -> tuple[list[Any], list[str]]:
    conn = read_db()
    screens = conn.execute("SELECT device_id, zone FROM devices WHERE kind = 'signage'"
                           " ORDER BY device_id").fetchall()
    zones = {r[0] for r in conn.execute("SELECT DISTINCT zone FROM devices"
                                        " WHERE zone IS NOT NULL AND zone != ''")}
    return screens, sorted(zones)


def _tz(doc: dict[str, Any]) -> ZoneInfo:
    try:
        return ZoneInfo(str(doc.get("timezone", "UTC")))
    except (ValueError, ZoneInfoNotFoundError):
        return ZoneInfo("UTC")


def _summary(p: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    sched = p.get("schedule") or {}
    days = sched.get("days")
    end = edits.takeover_end(p, tz)
    return {"id": p.get("id"), "priority": p.get("priority", 0),
            "default": bool(p.get("default")), "takeover": end is not None,
            "ends": end.strftime("%Y-%m-%d %H:%M") if end else None,
            "screens": ", ".join(map(str, p.get("screens") or [])),
            "zones": ", ".join(map(str, p.get("zones") or [])),
            "days": ", ".join(_(d) for d in days) if days else _("every day"),
            "hours": f"{sched['from']}–{sched['to']}" if "from" in sched else "",
            "dates": " → ".join(x for x in (sched.get("start_date"), sched.get("end_date"))
                                if x),
            "items": len(p.get("items") or [])}


def _now_playing(doc: dict[str, Any], screens: list[Any]) -> dict[str, str | None]:
    try:
        loaded = load_playlists(json.dumps(doc))
    except PlaylistError:
        return {}
    now = time.time()
    out = {}
    for s in screens:
        chosen = resolve(loaded, s["device_id"], s["zone"], now)
        out[s["device_id"]] = chosen.id if chosen else None
    return out


def _products() -> list[Any]:
    return read_db().execute("SELECT gtin, name, price_cents FROM products ORDER BY name"
                             " LIMIT 1000").fetchall()


def _images(doc: dict[str, Any]) -> list[str]:
    """Pictures to pick from: those of the playlists (uploads included) and the products'."""
    out = [i.get("image") for p in doc["playlists"] if isinstance(p, dict)
           for i in p.get("items") or [] if isinstance(i, dict)]
    for (images,) in read_db().execute("SELECT images FROM product_content LIMIT 500"):
        out += json.loads(images or "[]")
    return sorted({i for i in out if isinstance(i, str) and _ASSET.match(i)})[:500]


def _draft() -> tuple[dict[str, Any], dict[str, Any]]:
    """A refused form's entries, to draw it again as typed (escaped like any text)."""
    if request.method != "POST":
        return {}, {}
    f = request.form
    schedule = {k: f.get(k, "")[:20] for k in ("from", "to", "start_date", "end_date")}
    playlist = {"id": f.get("id", "")[:64], "priority": f.get("priority", "")[:6],
                "screens": f.getlist("screens")[:200], "zones": f.getlist("zones")[:200],
                "default": bool(f.get("default")),
                "schedule": {**schedule, "days": f.getlist("days")[:7]}}
    item = {k: f.get(k, "")[:LIMITS.get(k, 64)] for k in
            ("kind", "gtin", "title", "body", "badge", "image", "duration_s")}
    return playlist, item


def _index(status: int = 200) -> tuple[str, int]:
    doc, version = edits.current(read_db())
    screens, zones = _targets()
    tz = _tz(doc)
    lists = [_summary(p, tz) for p in doc["playlists"] if isinstance(p, dict)]
    draft_p, draft_it = _draft()
    return render_template("playlists.html", version=version or "", lists=lists,
                           timezone=doc.get("timezone", "UTC"), screens=screens, zones=zones,
                           playing=_now_playing(doc, screens), days=DAYS, kinds=KINDS,
                           products=_products(), images=_images(doc), draft_p=draft_p,
                           new_item=draft_it if request.endpoint == "playlists.create" else {},
                           takeover_item=draft_it if request.endpoint == "playlists.takeover"
                           else {}, minutes=request.form.get("minutes", "60")[:4]), status


def _editor(playlist_id: str, status: int = 200) -> tuple[str, int]:
    doc, version = edits.current(read_db())
    playlist = edits.find(doc, playlist_id)
    if playlist is None:
        flash(_("No playlist %(id)s (deleted meanwhile?).", id=playlist_id[:64]))
        return _index(404)
    screens, zones = _targets()
    return render_template("playlist_edit.html", version=version or "", p=playlist,
                           summary=_summary(playlist, _tz(doc)), screens=screens, zones=zones,
                           days=DAYS, kinds=KINDS, products=_products(),
                           images=_images(doc)), status


def _store(doc: dict[str, Any], what: str) -> PlaylistError | None:
    """Save ``doc`` against the form's version; flash the outcome. The error, if refused."""
    try:
        stored = edits.save(write_db(), doc, request.form.get("version") or None, time.time())
    except edits.EditConflict:
        flash(_("Another change was saved meanwhile; here are the playlists as they are now."
                " Nothing was changed."))
        return PlaylistError(["conflict"])
    except PlaylistError as exc:
        flash(_("This change was refused: %(why)s", why=str(exc)[:300]))
        return exc
    log.info("panel: %s %s; playlists version %s", g.user.username, what, stored.version)
    flash(_("Saved (version %(v)s); screens get it within a second.", v=stored.version))
    return None


def _status(err: PlaylistError | None) -> int:
    return 409 if err is not None and err.problems == ["conflict"] else 400


def _save_then_edit(doc: dict[str, Any], what: str, playlist_id: str
                    ) -> Response | tuple[str, int]:
    """Save ``doc``; back to the playlist's editor, with the refusal's status if refused."""
    err = _store(doc, what)
    if err is not None:
        return _editor(playlist_id, _status(err))
    return redirect(url_for("playlists.edit", playlist_id=playlist_id))


def _item(playlist_id: str, item_id: str
          ) -> tuple[dict[str, Any], dict[str, Any] | None, int | None]:
    """The stored document, the playlist and the item's index (None where missing)."""
    doc, _version = edits.current(read_db())
    playlist = edits.find(doc, playlist_id)
    n = _item_index(playlist, item_id) if playlist is not None else None
    return doc, playlist, n


@bp.route("/")
@requires(MANAGER)
def index() -> tuple[str, int]:
    return _index()


@bp.route("/new", methods=("POST",))
@requires(MANAGER)
@takes_photo
def create() -> Response | tuple[str, int]:
    pid = request.form.get("id", "").strip()
    screens, zones = _targets()
    try:
        if not valid_id(pid) or pid.startswith(edits.TAKEOVER_PREFIX):
            raise FormError(_("Name the playlist with letters, digits, '-', '_' or '.'"
                              " (at most 64, not starting with takeover-)."))
        settings = settings_from_form(request.form, {s["device_id"] for s in screens},
                                      set(zones))
        item = item_from_form(request.form)
    except FormError as exc:
        flash(str(exc))
        return _index(400)
    doc, _version = edits.current(read_db())
    if edits.find(doc, pid) is not None:
        flash(_("A playlist named %(id)s exists already.", id=pid))
        return _index(400)
    doc["playlists"].append({"id": pid, **settings, "items": [item]})
    err = _store(doc, f"created playlist {pid}")
    if err is not None:
        return _index(_status(err))
    return redirect(url_for("playlists.edit", playlist_id=pid))


@bp.route("/settings", methods=("POST",))
@requires(MANAGER)
def settings() -> Response | tuple[str, int]:
    tz = request.form.get("timezone", "").strip()
    try:
        if not 0 < len(tz) <= 60:
            raise ValueError
        ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError):
        flash(_("Unknown time zone; use a name like Europe/Paris."))
        return _index(400)
    doc, _version = edits.current(read_db())
    doc["timezone"] = tz
    err = _store(doc, f"set the playlists' time zone to {tz}")
    return _index(_status(err)) if err else redirect(url_for("playlists.index"))


@bp.route("/<playlist_id>/edit")
@requires(MANAGER)
def edit(playlist_id: str) -> tuple[str, int]:
    return _editor(playlist_id)


@bp.route("/<playlist_id>/settings", methods=("POST",))
@requires(MANAGER)
def save(playlist_id: str) -> Response | tuple[str, int]:
    """Targets, priority, default flag and schedule of one playlist."""
    doc, _version = edits.current(read_db())
    playlist = edits.find(doc, playlist_id)
    if playlist is None:
        return _editor(playlist_id)
    screens, zones = _targets()
    try:
        settings = settings_from_form(request.form, {s["device_id"] for s in screens},
                                      set(zones))
    except FormError as exc:
        flash(str(exc))
        return _editor(playlist_id, 400)
    for key in ("priority", "screens", "zones", "default", "schedule"):
        playlist.pop(key, None)
    playlist.update(settings)
    return _save_then_edit(doc, f"edited playlist {playlist_id}", playlist_id)


@bp.route("/<playlist_id>/delete", methods=("POST",))
@requires(MANAGER)
def delete(playlist_id: str) -> Response | tuple[str, int]:
    doc, _version = edits.current(read_db())
    if edits.find(doc, playlist_id) is None:
        flash(_("No playlist %(id)s (deleted meanwhile?).", id=playlist_id[:64]))
        return _index(404)
    doc["playlists"] = [p for p in doc["playlists"]
                        if not (isinstance(p, dict) and p.get("id") == playlist_id)]
    err = _store(doc, f"deleted playlist {playlist_id}")
    return _index(_status(err)) if err else redirect(url_for("playlists.index"))


@bp.route("/<playlist_id>/items", methods=("POST",))
@requires(MANAGER)
@takes_photo
def add_item(playlist_id: str) -> Response | tuple[str, int]:
    doc, _version = edits.current(read_db())
    playlist = edits.find(doc, playlist_id)
    if playlist is None:
        return _editor(playlist_id)
    try:
        item = item_from_form(request.form)
    except FormError as exc:
        flash(str(exc))
        return _editor(playlist_id, 400)
    playlist.setdefault("items", []).append(item)
    return _save_then_edit(doc, f"added {item['kind']} {item['id']} to {playlist_id}", playlist_id)


def _item_index(playlist: dict[str, Any], item_id: str) -> int | None:
    return next((n for n, i in enumerate(playlist.get("items") or [])
                 if isinstance(i, dict) and i.get("id") == item_id), None)


@bp.route("/<playlist_id>/items/<item_id>", methods=("POST",))
@requires(MANAGER)
@takes_photo
def edit_item(playlist_id: str, item_id: str) -> Response | tuple[str, int]:
    doc, playlist, n = _item(playlist_id, item_id)
    if playlist is None or n is None:
        flash(_("No such item (deleted meanwhile?)."))
        return _editor(playlist_id, 404)
    try:
        playlist["items"][n] = item_from_form(request.form, item_id)
    except FormError as exc:
        flash(str(exc))
        return _editor(playlist_id, 400)
    return _save_then_edit(doc, f"edited item {item_id} of {playlist_id}", playlist_id)


@bp.route("/<playlist_id>/items/<item_id>/delete", methods=("POST",))
@requires(MANAGER)
def delete_item(playlist_id: str, item_id: str) -> Response | tuple[str, int]:
    doc, playlist, n = _item(playlist_id, item_id)
    if playlist is None or n is None:
        flash(_("No such item (deleted meanwhile?)."))
        return _editor(playlist_id, 404)
    if len(playlist["items"]) == 1:
        flash(_("A playlist keeps at least one item: delete the playlist instead."))
        return _editor(playlist_id, 400)
    del playlist["items"][n]
    return _save_then_edit(doc, f"deleted item {item_id} of {playlist_id}", playlist_id)


@bp.route("/<playlist_id>/items/<item_id>/move", methods=("POST",))
@requires(MANAGER)
def move_item(playlist_id: str, item_id: str) -> Response | tuple[str, int]:
    doc, playlist, n = _item(playlist_id, item_id)
    step = {"up": -1, "down": 1}.get(request.form.get("direction", ""))
    if playlist is None or n is None or step is None:
        flash(_("No such item (deleted meanwhile?)."))
        return _editor(playlist_id, 404 if step else 400)
    items = playlist["items"]
    m = n + step
    if 0 <= m < len(items):
        items[n], items[m] = items[m], items[n]
        err = _store(doc, f"moved item {item_id} of {playlist_id} {request.form['direction']}")
        if err is not None:
            return _editor(playlist_id, _status(err))
    return redirect(url_for("playlists.edit", playlist_id=playlist_id))


@bp.route("/takeover", methods=("POST",))
@requires(MANAGER)
@takes_photo
def takeover() -> Response | tuple[str, int]:
    """Push a promotion (or a product) to every screen of a zone for some minutes."""
    screens, _zones = _targets()
    zone = request.form.get("zone", "")
    raw = request.form.get("minutes", "").strip()
    try:
        if zone not in {s["zone"] for s in screens if s["zone"]}:
            raise FormError(_("Pick a zone that has screens."))
        if not raw.isdigit() or not 1 <= int(raw) <= edits.MAX_TAKEOVER_MIN:
            raise FormError(_("A takeover lasts 1 to %(n)s minutes.",
                              n=edits.MAX_TAKEOVER_MIN))
        item = item_from_form(request.form)
    except FormError as exc:
        flash(str(exc))
        return _index(400)
    doc, _version = edits.current(read_db())
    now = time.time()
    playlist = edits.takeover_playlist(zone, item, int(raw), now, _tz(doc))
    doc["playlists"] = [p for p in doc["playlists"]
                        if not (isinstance(p, dict) and p.get("id") == playlist["id"])]
    doc["playlists"].append(playlist)
    err = _store(doc, f"took over zone {zone} for {raw} min")
    if err is not None:
        return _index(_status(err))
    end = datetime.fromtimestamp(now + int(raw) * 60, _tz(doc)).strftime("%H:%M")
    flash(_("Zone %(zone)s shows this until %(end)s.", zone=zone, end=end))
    return redirect(url_for("playlists.index"))
