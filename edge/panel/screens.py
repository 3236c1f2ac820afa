"""Screens: what each signage screen shows now, and pushing a product to a zone.

The edge does not store the commands it sends (they are derived from committed
events, :mod:`edge.commands`), so the panel listens to them: inside the edge
process a :class:`ScreenLog` is one of the node's listeners and keeps, per
screen, the last command and when it went out. A manager can also push a
product to every screen of a zone at once (a promotion, a product the
competitor advertises): a ``show_product`` command per screen, with the price
the rules chose (``products``), through the node's own MQTT session. Like any
screen command it carries no customer data (``command.json`` forbids it).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from contract.commands import ShowProduct
from edge.analytics import EFFECTIVE_STATE

from .db import read_db
from .i18n import gettext as _
from .roles import MANAGER, requires

bp = Blueprint("screens", __name__, url_prefix="/screens")


class ScreenLog:
    """Last command sent to each screen; fed by the node's event listeners (its thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, dict[str, Any]] = {}

    def on_event(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "command.signage" and event.get("device_id"):
            with self._lock:
                self._last[event["device_id"]] = {**event, "sent_at": time.time()}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._last)


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
    return render_template("screens.html", screens=screens, showing=log.snapshot(),
                           products=products, zones=zones,
                           can_push=getattr(_node(), "bus", None) is not None), status


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
    for screen in screens:
        cmd = ShowProduct(cmd_id=str(uuid.uuid4()), ts=now, zone=zone, gtin=product["gtin"],
                          name=product["name"], brand=product["brand"],
                          price_cents=product["price_cents"],
                          currency=product["currency"]).to_payload()
        bus.publish_command("signage", screen, cmd)
        current_app.extensions["vitrine_screen_log"].on_event(
            "command.signage", {"device_id": screen, **cmd, "pushed_by": g.user.username})
    flash(_("%(name)s sent to %(n)s screen(s) in %(zone)s.", name=product["name"],
            n=len(screens), zone=zone))
    return redirect(url_for("screens.index"))
