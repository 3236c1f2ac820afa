"""Click & collect: the store's pickup queue, prepare -> ready -> collected.

Orders for collection in this store queue here once paid: placed at a kiosk
(``kiosk_orders``, written by the kiosk service in the writer's transaction) or
on the web shop (central routes them here: ``edge/order_feed.py`` writes them to
the same table, with the pickup code central gave the customer). Staff
move them along; collection needs the customer's pickup QR
(``VITRINE-PICKUP:{order_id}:{code}``, read by a store scanner or photographed
with the tablet, :mod:`edge.panel.scanning`) or the six-digit code with the
order picked from the list, compared in constant time. Each step is one
conditional UPDATE (``WHERE status = <expected>``), so two clerks on two tablets
cannot collect the same order twice; each step goes through
:func:`edge.order_status.change_status`, which records who made it and queues it
for central in the same transaction. The live stream tells every open page when
a customer with an order to collect identifies in the store
(:func:`open_orders_for`).
"""

from __future__ import annotations

import hmac
import json
import sqlite3
import time
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..order_status import OrderNotFound, StaleStatus, TransitionError, change_status
from .db import read_db, write_db
from .events import mask_customer
from .i18n import gettext as _
from .roles import STAFF, requires
from .scanning import ScanError, scanned_text, takes_photo

bp = Blueprint("pickups", __name__, url_prefix="/pickups")
PREFIX = "VITRINE-PICKUP:"
#: The steps staff take, in order; "collected" only through :func:`collect`.
NEXT = {"paid": "preparing", "preparing": "ready"}
OPEN = ("paid", "preparing", "ready")
RECENT_S = 12 * 3600.0


class PickupError(ValueError):
    """A scan or code that collects nothing (message translated)."""


def parse_pickup(text: str) -> tuple[str, str]:
    """``VITRINE-PICKUP:{order_id}:{code}`` -> ``(order_id, code)``."""
    if not text.startswith(PREFIX):
        raise PickupError(_("This is not a pickup QR code."))
    order_id, sep, code = text[len(PREFIX):].rpartition(":")
    if not sep or not order_id or len(order_id) > 64 or not (code.isascii() and code.isdigit()
                                                             and len(code) == 6):
        raise PickupError(_("This is not a pickup QR code."))
    return order_id, code


def _is_collect(payload: str) -> bool:
    try:
        return (json.loads(payload).get("fulfilment") or {}).get("type") == "click_and_collect"
    except (ValueError, AttributeError):
        return False


def queue(conn: sqlite3.Connection, now: float) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT order_id, customer_id, status, total_cents, currency, payload, created_at,"
        " updated_at, channel FROM kiosk_orders WHERE status IN ('paid', 'preparing', 'ready')"
        " OR (status = 'collected' AND updated_at > ?) ORDER BY created_at",
        (now - RECENT_S,)).fetchall()
    out = []
    for r in rows:
        if not _is_collect(r["payload"]):
            continue
        order = json.loads(r["payload"])
        out.append({"order_id": r["order_id"], "short": r["order_id"][:8],
                    "customer": mask_customer(r["customer_id"], g.user.role),
                    "status": r["status"], "channel": r["channel"],
                    "total_cents": r["total_cents"],
                    "currency": r["currency"], "created_at": r["created_at"],
                    "updated_at": r["updated_at"],
                    "lines": [(ln.get("quantity"), ln.get("name") or ln.get("gtin"))
                              for ln in order.get("lines", []) if isinstance(ln, dict)],
                    "next": NEXT.get(r["status"])})
    return out


def open_orders_for(conn: sqlite3.Connection, customer_id: str) -> list[tuple[str, str]]:
    """``(order_id, status)`` of this customer's orders waiting in this store."""
    rows = conn.execute("SELECT order_id, status, payload FROM kiosk_orders"
                        " WHERE customer_id = ? AND status IN ('paid', 'preparing', 'ready')",
                        (customer_id,)).fetchall()
    return [(r[0], r[1]) for r in rows if _is_collect(r[2])]


def _page(status: int = 200, collected: str | None = None) -> tuple[str, int]:
    return render_template("pickups.html", orders=queue(read_db(), time.time()),
                           collected=collected), status


@bp.route("/")
@requires(STAFF)
def index() -> tuple[str, int]:
    return _page()


@bp.route("/<order_id>/advance", methods=("POST",))
@requires(STAFF)
def advance(order_id: str) -> Response | tuple[str, int]:
    current = request.form.get("from", "")
    target = NEXT.get(current)
    if target is None:
        flash(_("This order cannot move on from here."))
        return _page(400)
    try:
        change_status(write_db(), order_id, target, actor=g.user.username, now=time.time(),
                      expected=current)
    except (StaleStatus, OrderNotFound, TransitionError):
        flash(_("This order changed meanwhile; here is the queue as it is now."))
        return _page(409)
    return redirect(url_for("pickups.index"))


@bp.route("/collect", methods=("POST",))
@requires(STAFF)
@takes_photo
def collect() -> tuple[str, int]:
    try:
        order_id = request.form.get("order_id", "")
        typed = request.form.get("pickup_code", "").strip()
        if order_id and typed:
            code = typed
        else:
            order_id, code = parse_pickup(scanned_text(request))
        row = read_db().execute("SELECT status, pickup_code FROM kiosk_orders"
                                " WHERE order_id = ?", (order_id,)).fetchone()
        if row is None or not hmac.compare_digest(row["pickup_code"].encode(),
                                                  code.encode()[:16]):
            raise PickupError(_("Wrong pickup code for this order."))
        if row["status"] != "ready":
            raise PickupError(_("This order is %(status)s, not ready to collect.",
                                status=_(row["status"])))
        try:
            change_status(write_db(), order_id, "collected", actor=g.user.username,
                          now=time.time(), expected="ready")
        except (StaleStatus, OrderNotFound, TransitionError):
            raise PickupError(_("This order was just collected on another tablet.")) from None
    except (PickupError, ScanError) as exc:
        flash(str(exc))
        return _page(400)
    return _page(collected=order_id[:8])
