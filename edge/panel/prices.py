"""Prices (managers: local markdowns) and stock counts (staff), through the edge's rules.

A markdown is the store's opinion, not the price: :func:`edge.feed_apply.materialise`
weighs it against central's price list with the ``price`` rule (edge/rules.py)
and writes the winner to ``products``, which screens, labels and kiosks read;
the node is then asked to reload so the next command carries it. A shelf count
is weighed against central's stock figure by the ``stock`` rule in the same way.
With a central link the node's sync client does the writing (it also schedules
the next price change); standalone the panel runs the same function itself.
"""

from __future__ import annotations

import re
import time
from typing import Any

from flask import Blueprint, current_app, flash, g, render_template, request
from werkzeug.wrappers import Response

from edge.local_overrides import write_markdown, write_store_count
from edge.rules import Candidate, Rules

from ..db import immediate
from .db import read_db, write_db
from .i18n import gettext as _
from .roles import MANAGER, STAFF, requires

bp = Blueprint("prices", __name__)
_PRICE = re.compile(r"\s*([0-9]{1,6})(?:[.,]([0-9]{1,2}))?\s*")  # ASCII digits only
_QUANTITY = re.compile(r"\s*([0-9]{1,7})\s*")
MAX_QUANTITY = 1_000_000


def parse_price(text: str) -> int | None:
    """``"12.99"`` or ``"12,99"`` -> 1299 cents; anything else -> None."""
    m = _PRICE.fullmatch(text or "")
    if not m:
        return None
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def parse_quantity(text: str) -> int | None:
    """``"12"`` -> 12; negative, fractional, non-ASCII digits ("¹") or absurd -> None."""
    m = _QUANTITY.fullmatch(text or "")
    if not m or int(m.group(1)) > MAX_QUANTITY:
        return None
    return int(m.group(1))


def _node() -> Any:
    return current_app.extensions.get("vitrine_node")


def _rules() -> Rules:
    node = _node()
    sync = getattr(node, "sync", None)
    return sync.rules if sync is not None else Rules()


def _products(search: str) -> list[Any]:
    like = f"%{search}%"
    return read_db().execute(
        "SELECT p.gtin, p.name, p.price_cents, p.currency, m.price_cents AS markdown,"
        " m.set_by, s.quantity AS counted, s.counted_at FROM products p"
        " LEFT JOIN local_markdowns m ON m.gtin = p.gtin"
        " LEFT JOIN local_stock_counts s ON s.gtin = p.gtin"
        " WHERE p.name LIKE ? OR p.gtin LIKE ? ORDER BY p.name LIMIT 200",
        (like, like)).fetchall()


def stock_on_hand(conn: Any, gtin: str, store_id: str, rules: Rules, now: float
                  ) -> Candidate | None:
    """The figure the ``stock`` rule picks between central's and the shelf count."""
    candidates = []
    count = conn.execute("SELECT quantity, counted_at FROM local_stock_counts WHERE gtin = ?",
                         (gtin,)).fetchone()
    if count:
        candidates.append(Candidate("store_count", count[0], count[1]))
    central = conn.execute("SELECT quantity, observed_at FROM sync_stock WHERE gtin = ?"
                           " AND location = ?", (gtin, store_id)).fetchone()
    if central:
        candidates.append(Candidate("central", central[0], central[1]))
    return rules.resolve("stock", candidates, now)


def _page(template: str, status: int = 200) -> tuple[str, int]:
    search = request.values.get("q", "")[:100]
    rows = _products(search)
    conn, rules, now = read_db(), _rules(), time.time()
    stock = {r["gtin"]: stock_on_hand(conn, r["gtin"], current_app.config["STORE_ID"], rules,
                                      now) for r in rows} if template == "stock.html" else {}
    return render_template(template, products=rows, q=search, stock=stock), status


def _known(gtin: str) -> bool:
    return read_db().execute("SELECT 1 FROM products WHERE gtin = ?", (gtin,)).fetchone() \
        is not None


def _write(work: Any) -> None:
    conn = write_db()
    with immediate(conn):
        work(conn)
    node = _node()
    if node is not None:
        node.request_reload(wait=5.0)  # the next screen command carries the new price


@bp.route("/prices/")
@requires(MANAGER)
def prices() -> tuple[str, int]:
    return _page("prices.html")


@bp.route("/prices/markdown", methods=("POST",))
@requires(MANAGER)
def markdown() -> tuple[str, int] | Response:
    gtin = request.form.get("gtin", "")
    if not _known(gtin):
        flash(_("Unknown product."))
        return _page("prices.html", 404)
    remove = request.form.get("remove") == "1"
    cents = None if remove else parse_price(request.form.get("price", ""))
    if not remove and cents is None:
        flash(_("Enter a price like 12.99."))
        return _page("prices.html", 400)
    sync = getattr(_node(), "sync", None)
    if sync is not None:
        sync.set_markdown(gtin, cents, set_by=g.user.username)
    else:
        def work(conn: Any) -> None:
            write_markdown(conn, current_app.config["STORE_ID"], _rules(), gtin, cents,
                           now=time.time(), set_by=g.user.username)
        _write(work)
    if cents is None:
        flash(_("Markdown for %(gtin)s removed.", gtin=gtin))
    else:
        (shown,) = read_db().execute("SELECT price_cents FROM products WHERE gtin = ?",
                                     (gtin,)).fetchone()
        flash(_("Markdown for %(gtin)s saved; the price rule now shows %(price)s.", gtin=gtin,
                price=f"{shown / 100:.2f}" if shown is not None else "\u2014"))
    return _page("prices.html")


@bp.route("/stock/")
@requires(STAFF)
def stock() -> tuple[str, int]:
    return _page("stock.html")


@bp.route("/stock/count", methods=("POST",))
@requires(STAFF)
def count() -> tuple[str, int]:
    gtin = request.form.get("gtin", "")
    if not _known(gtin):
        flash(_("Unknown product."))
        return _page("stock.html", 404)
    n = parse_quantity(request.form.get("quantity", ""))
    if n is None:
        flash(_("Enter a whole number of items, 0 or more."))
        return _page("stock.html", 400)
    sync = getattr(_node(), "sync", None)
    if sync is not None:
        sync.record_store_count(gtin, n, counted_by=g.user.username)
    else:
        _write(lambda conn: write_store_count(conn, gtin, n, at=time.time(),
                                              counted_by=g.user.username))
    flash(_("Count of %(n)s for %(gtin)s recorded.", n=n, gtin=gtin))
    return _page("stock.html")
