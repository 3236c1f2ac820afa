"""Collect an order by showing its pickup QR to the tablet's camera, or to the desk scanner.

The page (``GET /pickups/scan/``) opens the tablet's back camera with
``getUserMedia`` (the panel's own script file; HTTPS makes it a secure
context), and posts a JPEG of the picture a few times a second to
``POST /pickups/scan/frame``. Each frame is decoded here with the same zbar
path as a camera frame at the edge (:func:`contract.qr_image.decode_image`);
a pickup QR (``VITRINE-PICKUP:{order}:{code}``) is checked against the order
(code compared in constant time) and the page shows the order: lines, total,
state. Nothing is collected by the camera alone: staff hand the goods over and
press "Confirm collection", which posts the order id and code to the existing
``POST /pickups/collect`` (one conditional UPDATE, so two tablets cannot
collect it twice).

A store scanner at the pickup desk (a ``qr_scanner`` device on the broker,
not a keyboard) publishes what it reads like any scanner; the edge stores the
read in ``events``. The same page asks ``GET /pickups/scan/desk`` every
second for the newest pickup QR such a scanner read after the page opened, and
shows it the same way.

A frame that is not an image is a 400 with a reason, counted, and the last
one's fingerprint kept (size, SHA-256, first bytes, why), shown on the page; a
frame without a code is the normal case and answers ``{"found": false}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from typing import Any

from flask import Blueprint, current_app, g, jsonify, render_template, request
from werkzeug.wrappers import Response

from contract.aim import strip_aim
from contract.qr_image import FrameError, decode_image

from .db import read_db
from .events import mask_customer
from .i18n import gettext as _
from .pickups import PREFIX, PickupError, parse_pickup, pay_at_pickup
from .roles import STAFF, requires
from .scanning import MAX_PHOTO_BYTES, takes_photo

bp = Blueprint("pickup_scan", __name__, url_prefix="/pickups/scan")
FRAME_TYPES = ("image/jpeg", "image/png")


class FrameCounts:
    """Frames received and refused since start, and the last refused one's fingerprint
    (size, SHA-256, first bytes): a tablet streaming garbage shows on the page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames = 0
        self.bad_frames = 0
        self.last_bad: dict[str, Any] | None = None

    def add(self, bad: bytes | None = None, reason: str = "") -> None:
        with self._lock:
            self.frames += 1
            if bad is not None:
                self.bad_frames += 1
                self.last_bad = {"at": time.time(), "size": len(bad), "reason": reason,
                                 "sha256": hashlib.sha256(bad).hexdigest(),
                                 "head": bad[:16].hex(" ")}


def _counts() -> FrameCounts:
    return current_app.extensions.setdefault("vitrine_pickup_frames", FrameCounts())


def order_view(conn: sqlite3.Connection, text: str) -> dict[str, Any]:
    """What the page shows for a scanned text: the order, or why it collects nothing."""
    try:
        order_id, code = parse_pickup(text)
    except PickupError as exc:
        return {"found": True, "error": str(exc)}
    row = conn.execute("SELECT order_id, customer_id, status, total_cents, currency,"
                       " pickup_code, payload, channel FROM kiosk_orders WHERE order_id = ?",
                       (order_id,)).fetchone()
    if row is None or not hmac.compare_digest(row["pickup_code"].encode(), code.encode()[:16]):
        return {"found": True, "error": _("Wrong pickup code for this order.")}
    try:
        lines = json.loads(row["payload"]).get("lines", [])
    except (ValueError, AttributeError):
        lines = []
    # Ready, or a web order paid at the counter: staff take the payment, then confirm
    # (the collect route then walks it placed -> ... -> collected, each move checked).
    payable = pay_at_pickup(row["channel"], row["status"])
    collectable = row["status"] == "ready" or payable
    return {"found": True, "order_id": row["order_id"], "short": row["order_id"][:8],
            "code": code, "status": row["status"], "status_label": _(row["status"]),
            "collectable": collectable, "pay_at_pickup": payable,
            "error": None if collectable else _(
                "This order is %(status)s, not ready to collect.", status=_(row["status"])),
            "customer": mask_customer(row["customer_id"], g.user.role) or _("anonymous"),
            "total": f"{row['total_cents'] / 100:.2f} {row['currency']}",
            "lines": [f"{ln.get('quantity')} × {ln.get('name') or ln.get('gtin')}"
                      for ln in lines if isinstance(ln, dict)][:50]}


@bp.route("/")
@requires(STAFF)
def index() -> str:
    (last,) = read_db().execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
    return render_template("pickup_scan.html", desk_after=last, counts=_counts())


@bp.route("/frame", methods=("POST",))
@requires(STAFF)
@takes_photo
def frame() -> tuple[Response, int]:
    """One camera frame (JPEG or PNG body) -> the pickup order it shows, if any."""
    if request.mimetype not in FRAME_TYPES:
        _counts().add(request.get_data(cache=False)[:64],
                      f"content type {request.mimetype[:60]}")
        return jsonify(error=_("Send a JPEG or PNG picture.")), 415
    data = request.get_data(cache=False)
    if not data or len(data) > MAX_PHOTO_BYTES:
        _counts().add(data[:64], "empty" if not data else "too large")
        return jsonify(error=_("The photo is too large.") if data else
                       _("Send a JPEG or PNG picture.")), 400
    try:
        found = decode_image(data)
    except FrameError as exc:
        _counts().add(data, str(exc)[:200])
        return jsonify(error=_("This file is not a PNG or JPEG photo.")), 400
    _counts().add()
    pickups = [d.text for d in found if d.text.startswith(PREFIX)]
    if pickups:
        return jsonify(order_view(read_db(), pickups[0][:2048])), 200
    if found:
        return jsonify(found=True, error=_("This is not a pickup QR code.")), 200
    return jsonify(found=False), 200


@bp.route("/desk")
@requires(STAFF)
def desk() -> tuple[Response, int]:
    """The newest pickup QR a store scanner read after event ``after`` (``?after=``).

    Answers ``after`` = the newest event looked at, so the page's next poll reads only
    what arrived since, however long it stays open.
    """
    raw = request.args.get("after", "0")
    after = int(raw) if raw.isdigit() and len(raw) < 19 else 0
    conn = read_db()
    (newest,) = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
    row = conn.execute(
        "SELECT e.id, e.device_id, json_extract(e.payload, '$.text') AS text FROM events e"
        " JOIN devices d ON d.device_id = e.device_id AND d.kind = 'qr_scanner'"
        " WHERE e.id > ? AND e.id <= ? AND e.channel = 'qr' AND json_valid(e.payload)"
        " AND instr(json_extract(e.payload, '$.text'), ?) > 0 ORDER BY e.id DESC LIMIT 1",
        (after, newest, PREFIX)).fetchone()
    if row is None:
        return jsonify(found=False, after=max(after, newest)), 200
    _aim, text = strip_aim(str(row["text"]).strip(" \t\r\n"))
    out = order_view(conn, text[:2048])
    return jsonify({**out, "after": newest, "scanner": row["device_id"]}), 200
