"""The device registry as the edge sees it: state, firmware, last seen, stale, cut off."""

from __future__ import annotations

from flask import Blueprint, render_template

from .auth import login_required
from .db import read_db

bp = Blueprint("devices", __name__, url_prefix="/devices")


@bp.route("/")
@login_required
def index() -> str:
    rows = read_db().execute(
        "SELECT d.device_id, kind, zone, shelf, fw, state, heartbeat_s, last_seen, stale,"
        " clock_faults, last_bad_ts, c.until AS cut_until, c.dropped AS cut_dropped"
        " FROM devices d LEFT JOIN device_cutoffs c"
        " ON c.device_id = d.device_id AND c.reinstated_at IS NULL"
        " ORDER BY zone, shelf, d.device_id").fetchall()
    return render_template("devices.html", devices=rows,
                           stale=sum(1 for r in rows if r["stale"]),
                           bad_clocks=sum(1 for r in rows if r["clock_faults"]),
                           cut=sum(1 for r in rows if r["cut_until"]))
