"""Operations: forwarder backlog, feed sync ages, broker and disk health, and alarms.

Orders central refused for good (the forwarder's dead letters, ``central_error``
on the order: ``edge/forwarder.py``) are listed with central's reason and raise
an alarm: a customer may have paid at the kiosk for an order no store will see,
so a person settles it (refund, or the order taken again) and a manager marks it
settled here (:func:`settle`: who and when kept; the alarm ends, the reason stays).

:func:`alarms` is the one list of what needs a manager's attention; the frame
of every page shows it (:func:`alarm_context`) and the live stream refreshes it,
so an alarm is visible wherever the manager is. Each check is one cheap query
or system call: it runs on every page view.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response

from .db import read_db, write_db
from .i18n import gettext as _
from .roles import MANAGER, requires

bp = Blueprint("operations", __name__, url_prefix="/operations")
#: Alarm thresholds: an event not forwarded after 15 min, a feed older than twice its cadence
#: (one day for the slowest), under 10 % of the disk free.
BACKLOG_AGE_S = 900.0
FEED_AGE_S = {"catalogue": 6 * 86400.0, "prices": 2 * 86400.0, "stock": 600.0,
              "erasures": 3600.0}
DISK_FREE_PCT = 10.0
Alarm = tuple[str, dict[str, Any]]


def broker_reachable(host: str, port: int, timeout: float = 0.3) -> bool:
    """A TCP connect to the broker's port: cheap, and what every device needs to work."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def disk(path: str | Path) -> dict[str, Any]:
    usage = shutil.disk_usage(Path(path).resolve().parent)
    db_bytes = sum(p.stat().st_size for p in Path(path).resolve().parent.glob(
        Path(path).name + "*") if p.is_file())
    return {"total": usage.total, "free": usage.free,
            "free_pct": round(100.0 * usage.free / usage.total, 1) if usage.total else 0.0,
            "db_bytes": db_bytes}


def collect(conn: sqlite3.Connection, app: Flask, now: float) -> dict[str, Any]:
    backlog, oldest = conn.execute("SELECT count(*), min(created_at) FROM outbox"
                                   " WHERE sent_at IS NULL").fetchone()
    feeds = [dict(r) | {"age_s": (now - r["last_success_at"]) if r["last_success_at"]
                        else None}
             for r in conn.execute("SELECT feed, version, last_success_at, last_attempt_at,"
                                   " last_error FROM sync_state ORDER BY feed")]
    refused = [dict(r) for r in conn.execute(
        "SELECT order_id, status, channel, central_error, updated_at, refusal_settled_by,"
        " refusal_settled_at FROM kiosk_orders WHERE central_error IS NOT NULL"
        " ORDER BY refusal_settled_by IS NOT NULL, updated_at DESC LIMIT 100")]
    host, port = app.config.get("MQTT_HOST"), app.config.get("MQTT_PORT")
    return {"backlog": backlog, "refused_orders": refused,
            "oldest_unsent_age_s": (now - oldest) if oldest else None,
            "feeds": feeds, "central": bool(app.config.get("CENTRAL_URL")),
            "broker": {"address": f"{host}:{port}",
                       "reachable": bool(host and port and broker_reachable(host, port))},
            "disk": disk(app.config["DB_PATH"])}


def alarms(conn: sqlite3.Connection, app: Flask, now: float) -> list[Alarm]:
    """What needs attention, as ``(English text, parameters)`` for :func:`gettext`."""
    out: list[Alarm] = []
    (oldest,) = conn.execute("SELECT min(created_at) FROM outbox WHERE sent_at IS NULL"
                             ).fetchone()
    if oldest is not None and app.config.get("CENTRAL_URL") and now - oldest > BACKLOG_AGE_S:
        out.append(("Outbox: the oldest unsent event is %(age)s old.",
                    {"age": f"{(now - oldest) / 60:.0f} min"}))
    if app.config.get("CENTRAL_URL"):
        for feed, last in conn.execute("SELECT feed, last_success_at FROM sync_state"):
            if last is None:
                out.append(("Feed %(feed)s never synchronised.", {"feed": feed}))
            elif now - last > FEED_AGE_S.get(feed, 86400.0):
                out.append(("Feed %(feed)s last synchronised %(age)s ago.",
                            {"feed": feed, "age": f"{(now - last) / 3600:.1f} h"}))
    host, port = app.config.get("MQTT_HOST"), app.config.get("MQTT_PORT")
    if host and port and not broker_reachable(host, port):
        out.append(("Broker unreachable at %(addr)s.", {"addr": f"{host}:{port}"}))
    free = disk(app.config["DB_PATH"])["free_pct"]
    if free < DISK_FREE_PCT:
        out.append(("Disk almost full: %(pct)s%% free.", {"pct": free}))
    (stale,) = conn.execute("SELECT count(*) FROM devices WHERE stale = 1").fetchone()
    if stale:
        out.append(("%(n)s device(s) stale.", {"n": stale}))
    (refused,) = conn.execute("SELECT count(*) FROM kiosk_orders WHERE central_error"
                              " IS NOT NULL AND refusal_settled_by IS NULL").fetchone()
    if refused:
        out.append(("%(n)s order(s) refused by central: see Operations.", {"n": refused}))
    (unreviewed,) = conn.execute("SELECT count(*) FROM quarantine WHERE reviewed = 0"
                                 ).fetchone()
    if unreviewed:
        out.append(("%(n)s quarantined message(s) not reviewed.", {"n": unreviewed}))
    return out


def alarm_context() -> dict[str, Any]:
    """Template context: the alarms, for logged-in users only (nothing on the login page)."""
    if g.get("user") is None:
        return {"alarms": []}
    if "panel_alarms" not in g:
        g.panel_alarms = alarms(read_db(), current_app, time.time())
    return {"alarms": g.panel_alarms}


@bp.route("/")
@requires(MANAGER)
def index() -> str:
    return render_template("operations.html",
                           ops=collect(read_db(), current_app, time.time()))


@bp.route("/refused/<order_id>/settle", methods=("POST",))
@requires(MANAGER)
def settle(order_id: str) -> Response:
    """A manager dealt with an order central refused (refunded it, took it again)."""
    done = write_db().execute(
        "UPDATE kiosk_orders SET refusal_settled_by = ?, refusal_settled_at = ?"
        " WHERE order_id = ? AND central_error IS NOT NULL AND refusal_settled_by IS NULL",
        (g.user.username, time.time(), order_id)).rowcount
    flash(_("Order %(id)s marked settled.", id=order_id[:8]) if done
          else _("Nothing to settle for this order."))
    return redirect(url_for("operations.index"))
