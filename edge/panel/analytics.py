"""Analytics for managers: interest per hour, a heatmap of the store, uptime, CSV.

Everything here reads the durable tables :mod:`edge.analytics` fills
(``interest_hourly``, ``device_state_history``), never the outbox, so the
figures survive outbox cleanup and cost the same with a million events stored.
The heatmap is drawn on the store's zones as the layout lists them (the layout
carries no floor coordinates, so zones are tiles in layout order), as inline
SVG: no script, no external image.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Blueprint, abort, current_app, render_template
from werkzeug.wrappers import Response

from contract.layout import LayoutError, load_layout
from edge.analytics import uptime

from .db import read_db
from .roles import MANAGER, requires

bp = Blueprint("analytics", __name__, url_prefix="/analytics")
DAY = 86400.0
#: Rows per table on the page (a tablet scrolls); the CSV export has them all.
PAGE_ROWS = 20


def _zones(conn: Any, busy: Iterable[str]) -> list[tuple[str, str]]:
    """``(zone id, name)`` in layout order, then zones with devices or taps (``busy``)."""
    zones: list[tuple[str, str]] = []
    path = current_app.config.get("LAYOUT_PATH")
    if path:
        try:
            zones = [(z.id, z.name or z.id) for z in load_layout(path).zones]
        except (OSError, LayoutError):
            zones = []  # the edge refused to start with it anyway; show data zones
    known = {z for z, _ in zones}
    found = {r[0] for r in conn.execute("SELECT DISTINCT zone FROM devices"
                                        " WHERE zone IS NOT NULL")} | set(busy)
    for z in sorted(found - known - {""}):
        zones.append((z, z))
    return zones


def heatmap(zones: Sequence[tuple[str, str]], taps: dict[str, int], cols: int = 3
            ) -> list[dict[str, Any]]:
    """Tiles ``{x, y, w, h, zone, name, taps, level}``; level 0..5 by share of the busiest."""
    top = max(taps.values(), default=0)
    tiles = []
    for i, (zone, name) in enumerate(zones):
        n = taps.get(zone, 0)
        level = 0 if not top or not n else max(1, math.ceil(5 * n / top))
        tiles.append({"x": (i % cols) * 200, "y": (i // cols) * 120, "w": 190, "h": 110,
                      "zone": zone, "name": name, "taps": n, "level": level})
    return tiles


def _tables(conn: Any, now: float, limit: int = 500
            ) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """The analytics tables, at most ``limit`` rows each (the page shows fewer)."""
    since = now - DAY
    hourly = conn.execute(
        "SELECT hour, zone, shelf, gtin, taps FROM interest_hourly WHERE hour >= ?"
        " ORDER BY hour DESC, taps DESC LIMIT ?", (since - 3600, limit)).fetchall()
    # Per product over the last 7 calendar days (UTC), from the small daily table.
    week = (int(now // DAY) - 6) * DAY
    products = conn.execute(
        "SELECT d.gtin, coalesce(p.name, ''), sum(d.taps) AS taps, sum(d.ordered),"
        " sum(d.orders) FROM product_daily d LEFT JOIN products p ON p.gtin = d.gtin"
        " WHERE d.day >= ? GROUP BY d.gtin ORDER BY taps DESC, d.gtin LIMIT ?",
        (week, limit)).fetchall()
    ups = uptime(conn, since, now)
    return {
        "products": (["gtin", "name", "taps", "ordered", "orders", "conversion"],
                     [(*r, f"{100 * r[4] / r[2]:.1f} %" if r[2] else "") for r in products]),
        "uptime": (["device", "uptime"], sorted(ups.items())),
        "interest_hourly": (["hour", "zone", "shelf", "gtin", "taps"],
                            [(time.strftime("%Y-%m-%d %H:00", time.localtime(r[0])), *r[1:])
                             for r in hourly]),
    }


@bp.route("/")
@requires(MANAGER)
def index() -> str:
    conn = read_db()
    now = time.time()
    taps = dict(conn.execute("SELECT zone, sum(taps) FROM interest_hourly WHERE hour >= ?"
                             " GROUP BY zone", (now - DAY - 3600,)).fetchall())
    zones = _zones(conn, taps)
    tiles = heatmap(zones, taps)
    rows = max(1, math.ceil(len(zones) / 3))
    return render_template("analytics.html", tables=_tables(conn, now, PAGE_ROWS + 1),
                           tiles=tiles,
                           svg_h=rows * 120, page_rows=PAGE_ROWS)


def to_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """CSV text; cells that a spreadsheet would run as a formula are quoted inert."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    for row in rows:
        w.writerow(["'" + c if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c
                    for c in row])
    return out.getvalue()


@bp.route("/<name>.csv")
@requires(MANAGER)
def export(name: str) -> Response:
    tables = _tables(read_db(), time.time())
    if name not in tables:
        abort(404)
    header, rows = tables[name]
    return Response(to_csv(header, rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
