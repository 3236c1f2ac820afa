"""Click & collect: the store's pickup queue, (pay) -> prepare -> ready -> collected.

Orders for collection in this store queue here: placed at a kiosk (``kiosk_orders``,
written by the kiosk service in the writer's transaction), on the web shop, or at
another store's kiosk (central routes both here: ``edge/order_feed.py`` writes them
to the same table, with the pickup code the customer holds). A kiosk order joins
the queue once paid (the kiosk takes the payment); an order from another channel
that is still ``placed`` is *pay at pickup*: it is listed with its state, and staff
take the payment at the counter, either ahead ("Payment taken": placed -> paid,
then prepare as usual) or at collection ("Payment taken, hand over": the order
walks placed -> paid -> preparing -> ready -> collected, every step through the
lifecycle and recorded). Orders this store's kiosks took for collection in another
store are not in this queue (that store's) though the kiosk still shows their
status.

Collection needs the customer's pickup QR (``VITRINE-PICKUP:{order_id}:{code}``,
read by a store scanner or photographed with the tablet, :mod:`edge.panel.scanning`)
or the six-digit code with the order picked from the list, compared in constant
time. An open order can be cancelled (staff and managers: an order nobody will
collect); a cancelled order leaves the queue. Each step is one conditional UPDATE
(``WHERE status = <expected>``), so two clerks on two tablets cannot move the same
order twice; each goes through :func:`edge.order_status.change_status`, which
records who made it and queues it for central in the same transaction. An order
central refused for good shows central's reason (``central_error``). The live
stream tells every open page when a customer with an order to collect identifies
in the store (:func:`open_orders_for`).
"""

from __future__ import annotations

import hmac
import json
import sqlite3
import time
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..db import immediate
from ..order_status import OrderNotFound, StaleStatus, TransitionError, change_status
from .db import read_db, write_db
from .events import mask_customer
from .i18n import gettext as _
from .roles import STAFF, requires
from .scanning import ScanError, scanned_text, takes_photo

bp = Blueprint("pickups", __name__, url_prefix="/pickups")
PREFIX = "VITRINE-PICKUP:"
#: The steps staff take, in order; "collected" only through :func:`collect`, and
#: "placed -> paid" only for a pay-at-pickup order (:func:`pay_at_pickup`).
NEXT = {"placed": "paid", "paid": "preparing", "preparing": "ready"}
OPEN = ("placed", "paid", "preparing", "ready")
#: Collecting a pay-at-pickup order: the payment taken at the counter, then the rest.
WALK = ("paid", "preparing", "ready", "collected")
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


def _order(payload: str) -> dict[str, Any]:
    try:
        order = json.loads(payload)
    except ValueError:
        return {}
    return order if isinstance(order, dict) else {}


def taken_for_another_store(order: dict[str, Any], device_id: str) -> bool:
    """Did this store's kiosk take ``order`` for collection in another store?

    A kiosk order names the store that took it (``store_id``) and the one that
    fulfils it (``fulfilment.store_id``); one that central brought here from
    another store's kiosk is held under the device ``store:<taker>``.
    """
    target = (order.get("fulfilment") or {}).get("store_id")
    return (order.get("channel") == "kiosk" and not device_id.startswith("store:")
            and target is not None and target != order.get("store_id"))


def pay_at_pickup(channel: str, status: str) -> bool:
    """A ``placed`` order from a channel is paid at the counter (a kiosk's is being paid
    at the kiosk, or was abandoned there: not the counter's)."""
    return status == "placed" and channel != "kiosk"


def queue(conn: sqlite3.Connection, now: float) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT order_id, customer_id, status, total_cents, currency, payload, created_at,"
        " updated_at, channel, device_id, central_error FROM kiosk_orders"
        " WHERE status IN ('placed', 'paid', 'preparing', 'ready')"
        " OR (status = 'collected' AND updated_at > ?) ORDER BY created_at",
        (now - RECENT_S,)).fetchall()
    out = []
    for r in rows:
        order = _order(r["payload"])
        if not _is_collect(r["payload"]) or taken_for_another_store(order, r["device_id"]):
            continue
        if r["status"] == "placed" and not pay_at_pickup(r["channel"], r["status"]):
            continue
        out.append({"order_id": r["order_id"], "short": r["order_id"][:8],
                    "customer": mask_customer(r["customer_id"], g.user.role),
                    "status": r["status"], "channel": r["channel"],
                    "total_cents": r["total_cents"],
                    "currency": r["currency"], "created_at": r["created_at"],
                    "updated_at": r["updated_at"],
                    "lines": [(ln.get("quantity"), ln.get("name") or ln.get("gtin"))
                              for ln in order.get("lines", []) if isinstance(ln, dict)],
                    "next": NEXT.get(r["status"]),
                    "pay_at_pickup": r["status"] == "placed",
                    "taken_by": (order.get("store_id") if r["device_id"].startswith("store:")
                                 else None),
                    "central_error": r["central_error"],
                    "cancellable": r["status"] in OPEN})
    return out


def open_orders_for(conn: sqlite3.Connection, customer_id: str) -> list[tuple[str, str]]:
    """``(order_id, status)`` of this customer's orders waiting in this store."""
    rows = conn.execute("SELECT order_id, status, payload, channel, device_id FROM kiosk_orders"
                        " WHERE customer_id = ? AND status IN ('placed', 'paid', 'preparing',"
                        " 'ready')", (customer_id,)).fetchall()
    return [(r[0], r[1]) for r in rows if _is_collect(r[2])
            and not taken_for_another_store(_order(r[2]), r[4])
            and (r[1] != "placed" or pay_at_pickup(r[3], r[1]))]


def _queued(order_id: str) -> sqlite3.Row:
    """The order's row if it is in this store's queue (fulfilled here), else
    :class:`OrderNotFound`: the panel never moves an order another store fulfils."""
    row = read_db().execute("SELECT status, pickup_code, payload, channel, device_id"
                            " FROM kiosk_orders WHERE order_id = ?", (order_id,)).fetchone()
    if row is None or not _is_collect(row["payload"]) or taken_for_another_store(
            _order(row["payload"]), row["device_id"]):
        raise OrderNotFound(order_id)
    return row


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
        row = _queued(order_id)
        if current == "placed" and not pay_at_pickup(row["channel"], row["status"]):
            raise StaleStatus(row["status"])
        change_status(write_db(), order_id, target, actor=g.user.username, now=time.time(),
                      expected=current)
    except (StaleStatus, OrderNotFound, TransitionError):
        flash(_("This order changed meanwhile; here is the queue as it is now."))
        return _page(409)
    return redirect(url_for("pickups.index"))


@bp.route("/<order_id>/cancel", methods=("POST",))
@requires(STAFF)
def cancel(order_id: str) -> Response | tuple[str, int]:
    """Cancel an open order (nobody will collect it); sent to central like every move."""
    current = request.form.get("from", "")
    if current not in OPEN:
        flash(_("This order cannot be cancelled from here."))
        return _page(400)
    try:
        _queued(order_id)
        change_status(write_db(), order_id, "cancelled", actor=g.user.username,
                      now=time.time(), expected=current)
    except (StaleStatus, OrderNotFound, TransitionError):
        flash(_("This order changed meanwhile; here is the queue as it is now."))
        return _page(409)
    flash(_("Order %(id)s cancelled.", id=order_id[:8]))
    return redirect(url_for("pickups.index"))


def _hand_over(order_id: str, status: str) -> None:
    """Move a ready order to collected; a pay-at-pickup order whose payment the clerk
    took at the counter walks every step of the lifecycle in one transaction."""
    user, conn, now = g.user.username, write_db(), time.time()
    if status == "ready":
        change_status(conn, order_id, "collected", actor=user, now=now, expected="ready")
        return
    with immediate(conn):
        previous = "placed"
        for step in WALK:
            change_status(conn, order_id, step, actor=user, now=now, expected=previous)
            previous = step


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
        try:
            row = _queued(order_id)
        except OrderNotFound:
            row = None
        if row is None or not hmac.compare_digest(row["pickup_code"].encode(),
                                                  code.encode()[:16]):
            raise PickupError(_("Wrong pickup code for this order."))
        take_payment = request.form.get("take_payment") == "1"
        payable = pay_at_pickup(row["channel"], row["status"])
        if payable and not take_payment:
            raise PickupError(_("This order is not paid yet: take the payment, then hand "
                                "it over."))
        if row["status"] != "ready" and not payable:
            raise PickupError(_("This order is %(status)s, not ready to collect.",
                                status=_(row["status"])))
        try:
            _hand_over(order_id, row["status"])
        except (StaleStatus, OrderNotFound, TransitionError):
            raise PickupError(_("This order was just collected on another tablet.")) from None
    except (PickupError, ScanError) as exc:
        flash(str(exc))
        return _page(400)
    return _page(collected=order_id[:8])
