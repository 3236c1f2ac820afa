"""Clienteling: a salesperson scans a customer's loyalty QR (or types the id) and,
with the customer's consent, sees what helps to serve them.

The profile is central's customer view (``GET /api/v1/customers/<id>`` with
the store's token; parts meet over HTTP): name, loyalty points, this store's
recent activity, interests, and the wish-list they keep at this store's kiosks
(``kiosk_wishlist``, held at the edge; not shown if they withdrew consent at a
kiosk). Consent is central's decision: with a store token
it answers only for a customer who identified in this store recently and whose
tracking consent holds, and the same 404 for everyone else, so the panel shows
nothing about a customer who has not agreed. Where central sends the consents
too (a channel credential), the ``marketing`` consent is required as well. Add-on
suggestions come from the store's own data (:func:`edge.analytics.also_viewed`:
what shoppers who looked at the same products also looked at or bought). Lookups are
POSTs, so customer ids never sit in URLs, history or logs; the QR is read by a
store scanner or from a photo taken with the tablet (:mod:`edge.panel.scanning`).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, render_template, request

from contract.central_api import customer_path
from contract.loyalty import TokenError, looks_like_token, verify_token
from edge.analytics import also_viewed
from edge.central_client import CentralReader, SyncError

from .db import read_db
from .i18n import gettext as _
from .roles import STAFF, requires
from .scanning import ScanError, scanned_text, takes_photo

bp = Blueprint("clienteling", __name__, url_prefix="/clienteling")
CONSENT = "marketing"
_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class LookupError_(Exception):
    """Why no profile can be shown (message already translated)."""


def _settings() -> tuple[str, str, dict[str, bytes]]:
    node = current_app.extensions.get("vitrine_node")
    cfg = getattr(node, "cfg", None)
    url = getattr(cfg, "central_url", None) or current_app.config.get("CENTRAL_URL") or ""
    token = getattr(cfg, "store_token", None) or current_app.config.get("STORE_TOKEN") or ""
    keys = cfg.loyalty_keyring() if cfg is not None else current_app.config.get(
        "LOYALTY_KEYS", {})
    return url, token, keys


def customer_id_from(code: str, keys: dict[str, bytes], now: float) -> str:
    """A scanned loyalty QR (verified token) or a typed loyalty id -> customer id."""
    code = code.strip()
    if looks_like_token(code):
        try:
            return verify_token(keys, code, now=now).customer_id
        except TokenError as exc:
            raise LookupError_(_("This loyalty code is not valid (%(reason)s).",
                                 reason=exc.reason)) from None
    if 0 < len(code) <= 64 and set(code) <= _ID_CHARS:
        return code
    raise LookupError_(_("Scan the customer's loyalty QR code or type their loyalty id."))


def fetch_profile(customer_id: str) -> dict[str, Any]:
    url, token, _keys = _settings()
    if not url:
        raise LookupError_(_("Clienteling needs the link to central (central_url)."))
    try:
        return CentralReader(url, token, timeout_s=5.0).get(customer_path(customer_id))
    except SyncError as exc:
        if "HTTP 404" in str(exc):
            raise LookupError_(_("No profile to show: unknown id, not seen in this store"
                                 " lately, or no consent to personalised service.")) from None
        if "HTTP 429" in str(exc):
            raise LookupError_(_("Too many lookups; wait a minute.")) from None
        raise LookupError_(_("Central cannot be reached; try again.")) from None


def _names(gtins: list[str]) -> dict[str, str]:
    if not gtins:
        return {}
    marks = ",".join("?" * len(gtins))
    return dict(read_db().execute(f"SELECT gtin, name FROM products WHERE gtin IN ({marks})",
                                  gtins).fetchall())


def wishlist_of(customer_id: str) -> list[str]:
    """The wish-list the customer keeps at this store's kiosks (``kiosk_wishlist``), newest
    first; empty when they withdrew consent at a kiosk (``customer_cache.consent_local``),
    which wins over central's answer from then on, as it does on the kiosk's own screen."""
    conn = read_db()
    row = conn.execute("SELECT consent_local FROM customer_cache WHERE customer_id = ?",
                       (customer_id,)).fetchone()
    if row is not None and row[0] == 0:
        return []
    return [r[0] for r in conn.execute(
        "SELECT gtin FROM kiosk_wishlist WHERE customer_id = ? ORDER BY added_at DESC"
        " LIMIT 30", (customer_id,))]


def view_of(profile: dict[str, Any], customer_id: str | None = None) -> dict[str, Any]:
    """What the page shows: only with consent; product names resolved locally."""
    granted = ((profile.get("consents") or {}).get(CONSENT) or {}).get("granted")
    if "consents" in profile and not granted:  # a full profile: check the purpose ourselves
        return {"consent": False}
    # A store summary: central served it only because the customer's consent holds.
    timeline = [e for e in profile.get("timeline", []) if isinstance(e, dict)][:30]
    interests = (profile.get("interests") or {})
    products = [p.get("gtin") for p in interests.get("products", []) if isinstance(p, dict)]
    seen = [e.get("gtin") for e in timeline if e.get("gtin")]
    wished = wishlist_of(customer_id) if customer_id else []
    suggestions = also_viewed(read_db(), [*products, *seen, *wished])
    names = _names(list({g for g in [*products, *seen, *wished, *(s[0] for s in suggestions)]
                         if g}))
    return {
        "consent": True,
        "name": profile.get("name"),
        "points": profile.get("loyalty_points", 0),
        "last_seen": profile.get("last_seen"),
        "timeline": timeline,
        "products": [(g, names.get(g, "")) for g in products[:10]],
        "categories": [c.get("category") for c in interests.get("categories", [])[:10]
                       if isinstance(c, dict)],
        "suggestions": [(g, names.get(g, ""), n, b) for g, n, b in suggestions],
        "wishlist": [(g, names.get(g, "")) for g in wished],
        "names": names,
    }


@bp.route("/")
@requires(STAFF)
def index() -> str:
    return render_template("clienteling.html", view=None, error=None)


@bp.route("/lookup", methods=("POST",))
@requires(STAFF)
@takes_photo
def lookup() -> tuple[str, int]:
    _url, _token, keys = _settings()
    try:
        customer_id = customer_id_from(scanned_text(request), keys, time.time())
        view = view_of(fetch_profile(customer_id), customer_id)
    except (LookupError_, ScanError) as exc:
        return render_template("clienteling.html", view=None, error=str(exc)), 400
    return render_template("clienteling.html", view=view, error=None,
                           customer=customer_id), 200
