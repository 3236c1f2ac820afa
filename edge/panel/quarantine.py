"""Quarantined messages: list (reason filter, paging), detail, "mark reviewed".

Payloads are whatever a broken or hostile device sent, so the detail page shows
them only as escaped text (control characters made visible) and as a hex dump,
both truncated: nothing from a payload is ever interpreted by the browser.
"""

from __future__ import annotations

import math
import time

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .db import read_db, write_db
from .i18n import gettext as _
from .roles import MANAGER, requires

bp = Blueprint("quarantine", __name__, url_prefix="/quarantine")
PAGE_SIZE = 25
TEXT_LIMIT = 4096
HEX_LIMIT = 1024
_VISIBLE = {i: "\u00b7" for i in range(32) if chr(i) not in "\n\t"} | {127: "\u00b7"}


def as_text(payload: bytes, limit: int = TEXT_LIMIT) -> str:
    """UTF-8 (invalid bytes as U+FFFD) with control characters shown as a middle dot."""
    return payload[:limit].decode("utf-8", "replace").translate(_VISIBLE)


def hex_dump(payload: bytes, limit: int = HEX_LIMIT) -> list[str]:
    """Classic 16-bytes-per-line dump: offset, hex, printable ASCII."""
    lines = []
    for off in range(0, min(len(payload), limit), 16):
        chunk = payload[off:off + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {chunk.hex(' '):<47}  {text}")
    return lines


@bp.route("/")
@requires(MANAGER)
def index() -> str:
    conn = read_db()
    reasons = conn.execute("SELECT reason, count(*) AS n FROM quarantine GROUP BY reason"
                           " ORDER BY reason").fetchall()
    reason = request.args.get("reason", "")
    status = request.args.get("status", "all")
    where, args = [], []
    if reason in {r["reason"] for r in reasons}:
        where.append("reason = ?")
        args.append(reason)
    else:
        reason = ""
    if status in ("unreviewed", "reviewed"):
        where.append("reviewed = ?")
        args.append(1 if status == "reviewed" else 0)
    else:
        status = "all"
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    (total,) = conn.execute(f"SELECT count(*) FROM quarantine{clause}", args).fetchone()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    rows = conn.execute(
        "SELECT id, received_at, device_id, reason, detail, size, reviewed FROM quarantine"
        f"{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*args, PAGE_SIZE, (page - 1) * PAGE_SIZE]).fetchall()
    return render_template("quarantine/list.html", rows=rows, reasons=reasons, reason=reason,
                           status=status, page=page, pages=pages, total=total)


@bp.route("/<int:qid>")
@requires(MANAGER)
def detail(qid: int) -> str:
    row = read_db().execute("SELECT * FROM quarantine WHERE id = ?", (qid,)).fetchone()
    if row is None:
        abort(404)
    payload = bytes(row["payload"] or b"")
    return render_template("quarantine/detail.html", row=row, text=as_text(payload),
                           hex_lines=hex_dump(payload), stored=len(payload),
                           text_limit=TEXT_LIMIT, hex_limit=HEX_LIMIT)


@bp.route("/<int:qid>/review", methods=("POST",))
@requires(MANAGER)
def review(qid: int) -> Response:
    cur = write_db().execute(
        "UPDATE quarantine SET reviewed = 1, reviewed_at = ?, reviewed_by = ?"
        " WHERE id = ? AND reviewed = 0", (time.time(), g.user.username, qid))
    if cur.rowcount == 0 and read_db().execute("SELECT 1 FROM quarantine WHERE id = ?",
                                               (qid,)).fetchone() is None:
        abort(404)
    flash(_("Quarantine #%(id)s marked reviewed.", id=qid))
    return redirect(url_for("quarantine.detail", qid=qid))
