"""Recent interest and presence events, read from the outbox.

Privacy by design: events carry only a pseudonymous loyalty id, never a name,
and even that is masked for staff (``C00…34``): a shop assistant needs to see
that a known customer was at the shelf, not which one. Managers see the full
pseudonymous id, to follow up a complaint with central.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, g, render_template, request

from .db import read_db
from .roles import STAFF, requires

bp = Blueprint("events", __name__, url_prefix="/events")
DEFAULT_N = 50
MAX_N = 500


def mask_customer(customer_id: str | None, role: str) -> str | None:
    """Full id for managers; first three and last two characters for everyone else."""
    if not customer_id or role == "manager":
        return customer_id
    if len(customer_id) <= 6:
        return "\u2026"
    return f"{customer_id[:3]}\u2026{customer_id[-2:]}"


def event_row(kind: str, payload: str, role: str) -> dict[str, Any]:
    """What a page shows of one outbox event (customer masked by role), as plain data."""
    ev = json.loads(payload)
    product = ev.get("product") or {}
    return {
        "kind": kind, "at": ev.get("received_at"), "device_id": ev.get("device_id"),
        "zone": ev.get("zone"), "shelf": ev.get("shelf"), "gtin": ev.get("gtin"),
        "product": product.get("name"), "method": ev.get("method"),
        "customer": mask_customer(ev.get("customer_id"), role),
    }


@bp.route("/")
@requires(STAFF)
def index() -> str:
    n = min(max(request.args.get("n", DEFAULT_N, type=int) or DEFAULT_N, 1), MAX_N)
    rows = read_db().execute(
        "SELECT seq, kind, payload FROM outbox WHERE kind IN ('interest', 'presence')"
        " ORDER BY seq DESC LIMIT ?", (n,)).fetchall()
    events = [event_row(r["kind"], r["payload"], g.user.role) for r in rows]
    last_seq = rows[0]["seq"] if rows else 0
    return render_template("events.html", events=events, n=n, last_seq=last_seq)
