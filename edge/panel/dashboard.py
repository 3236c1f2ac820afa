"""Dashboard and ``GET /api/metrics``: how the edge is doing, at a glance.

With the panel inside the edge process the counters are the node's own
(:meth:`edge.metrics.Metrics.snapshot`, since the node started). A panel run on
its own has no node, so it counts rows in the database instead (totals since the
database was created; duplicates are not recorded there and show as unknown).
Backlog, stale devices and quarantine reasons always come from the database,
which is the truth for them either way.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from flask import Blueprint, current_app, g, jsonify, render_template
from werkzeug.wrappers import Response

from .db import read_db
from .events import event_row
from .roles import STAFF, requires

bp = Blueprint("dashboard", __name__)
HEADLINE = ("received", "accepted", "duplicates", "quarantined", "interest", "presence")


def _from_node(snapshot: dict[str, Any]) -> dict[str, Any]:
    counters: dict[str, int] = snapshot["counters"]
    return {
        "source": "node",
        "counters": {k: counters.get(k, 0) for k in HEADLINE},
        "quarantined_by_reason": {k.split(".", 1)[1]: v for k, v in counters.items()
                                  if k.startswith("quarantined.")},
        "commit_ms_avg": snapshot["commit_ms_avg"],
        "commit_ms_max": snapshot["commit_ms_max"],
    }


def _from_db(conn: sqlite3.Connection) -> dict[str, Any]:
    (accepted,) = conn.execute("SELECT count(*) FROM events").fetchone()
    by_reason = dict(conn.execute("SELECT reason, count(*) FROM quarantine GROUP BY reason"
                                  " ORDER BY reason").fetchall())
    kinds = dict(conn.execute("SELECT kind, count(*) FROM outbox WHERE kind IN"
                              " ('interest', 'presence') GROUP BY kind").fetchall())
    quarantined = sum(by_reason.values())
    return {
        "source": "database",
        "counters": {"received": accepted + quarantined, "accepted": accepted,
                     "duplicates": None, "quarantined": quarantined,
                     "interest": kinds.get("interest", 0),
                     "presence": kinds.get("presence", 0)},
        "quarantined_by_reason": by_reason,
    }


def collect(conn: sqlite3.Connection, snapshot: dict[str, Any] | None,
            now: float | None = None) -> dict[str, Any]:
    """Everything the dashboard and the JSON API show, as plain JSON-able data."""
    now = time.time() if now is None else now
    data = _from_node(snapshot) if snapshot is not None else _from_db(conn)
    backlog, oldest = conn.execute("SELECT count(*), min(created_at) FROM outbox"
                                   " WHERE sent_at IS NULL").fetchone()
    data["outbox"] = {"backlog": backlog,
                      "oldest_unsent_age_s": round(now - oldest, 1) if oldest else None}
    data["stale_devices"] = [
        dict(r) for r in conn.execute(
            "SELECT device_id, kind, zone, shelf, last_seen FROM devices WHERE stale = 1"
            " ORDER BY device_id")]
    (unreviewed,) = conn.execute("SELECT count(*) FROM quarantine WHERE reviewed = 0").fetchone()
    data["quarantine_unreviewed"] = unreviewed
    data["generated_at"] = now
    return data


def _current() -> dict[str, Any]:
    node = current_app.extensions.get("vitrine_node")
    return collect(read_db(), node.metrics.snapshot() if node is not None else None)


@bp.route("/")
@requires(STAFF)
def index() -> str:
    rows = read_db().execute(
        "SELECT seq, kind, payload FROM outbox WHERE kind IN ('interest', 'presence')"
        " ORDER BY seq DESC LIMIT 10").fetchall()
    recent = [event_row(r["kind"], r["payload"], g.user.role) for r in rows]
    return render_template("dashboard.html", data=_current(), recent=recent,
                           last_seq=rows[0]["seq"] if rows else 0)


@bp.route("/api/metrics")
@requires(STAFF)
def api_metrics() -> Response:
    return jsonify(_current())
