"""Live updates: one server-sent event stream per open page (``GET /live/stream``).

Each stream follows the outbox by ``seq`` (the id every event carries, so a
reconnecting browser resumes with ``Last-Event-ID`` and misses nothing) and,
every ``STATUS_S``, sends the device states and the alarm list when they
changed. It polls its own read-only connection every ``POLL_S``: that works the
same whether the writer is a thread or a process, costs one indexed range read
per poll, and keeps tap -> row well under the 250 ms budget
(``python -m bench.panel``). Streams end after ``MAX_S`` (the browser
reconnects by itself; ``PANEL_STREAM_MAX_S`` in tests), when the server stops, or
when the user is disabled.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, current_app, g, request
from werkzeug.wrappers import Response

from .dashboard import HEADLINE
from .db import open_read_only
from .devices import device_states
from .events import event_row
from .i18n import gettext
from .operations import alarms
from .pickups import open_orders_for
from .roles import MANAGER, STAFF, requires
from .screens import preview_times
from .users import get_user

bp = Blueprint("live", __name__, url_prefix="/live")
POLL_S = 0.05
STATUS_S = 2.0
MAX_S = 600.0
KEEPALIVE_S = 15.0


def _sse(event: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _start_seq(conn: sqlite3.Connection) -> int:
    raw = request.headers.get("Last-Event-ID") or request.args.get("after")
    if raw is not None and raw.isdigit():
        return int(raw)
    (top,) = conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()
    return top


def _pickup_notices(conn: sqlite3.Connection, payload: str, row: dict[str, Any],
                    seq: int) -> Iterator[str]:
    """A customer with an order waiting here just identified: tell every open page."""
    customer = json.loads(payload).get("customer_id")
    if not customer:
        return
    for order_id, status in open_orders_for(conn, customer):
        yield _sse("pickup", {"order": order_id[:8], "status": status,
                              "customer": row["customer"], "zone": row["zone"]}, seq)


@bp.route("/stream")
@requires(STAFF)
def stream() -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stopping = app.extensions["vitrine_panel_stopping"]
    username, role = g.user.username, g.user.role
    lang = g.get("lang", "en")
    conn = open_read_only(app.config["DB_PATH"])
    last = _start_seq(conn)

    node = app.extensions.get("vitrine_node")

    def status() -> dict[str, Any]:
        with app.app_context():
            g.lang = lang
            out = {"devices": device_states(conn),
                   "alarms": [gettext(text, **params)
                              for text, params in alarms(conn, app, time.time())]}
        if role == MANAGER:  # the screens page reloads a preview when a newer one came
            out["previews"] = preview_times(conn)
        if node is not None:  # the dashboard's live counters, in process only
            counters = node.metrics.snapshot()["counters"]
            out["counters"] = {k: counters.get(k, 0) for k in HEADLINE}
        return out

    def generate() -> Iterator[str]:
        nonlocal last
        try:
            yield "retry: 1000\n\n"
            deadline = time.monotonic() + app.config.get("PANEL_STREAM_MAX_S", MAX_S)
            next_status = 0.0
            next_ping = time.monotonic() + KEEPALIVE_S
            previous: dict[str, Any] | None = None
            while not stopping.is_set() and time.monotonic() < deadline:
                rows = conn.execute("SELECT seq, kind, payload FROM outbox WHERE seq > ?"
                                    " ORDER BY seq LIMIT 200", (last,)).fetchall()
                for seq, kind, payload in rows:
                    last = seq
                    if kind in ("interest", "presence"):
                        row = event_row(kind, payload, role)
                        yield _sse("tap", row, seq)
                        if kind == "presence":
                            yield from _pickup_notices(conn, payload, row, seq)
                now = time.monotonic()
                if now >= next_status:
                    next_status = now + STATUS_S
                    user = get_user(conn, username)
                    if user is None or user.role != role:
                        return  # disabled, removed or demoted: this stream ends now
                    current = status()
                    if current != previous:
                        previous = current
                        yield _sse("status", current)
                        next_ping = now + KEEPALIVE_S
                if now >= next_ping:
                    next_ping = now + KEEPALIVE_S
                    yield ": keep-alive\n\n"
                stopping.wait(POLL_S)
        finally:
            conn.close()

    return Response(generate(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
