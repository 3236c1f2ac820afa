"""The store manager's local web panel (Flask), served by the edge node.

``create_app(test_config=None, node=None)`` follows Flask's tutorial layout:
one blueprint per area (auth, dashboard, devices, users, operations,
analytics, prices, quarantine, events, live, pickups, clienteling, screens,
playlists), Jinja templates with autoescape,
one stylesheet and one script file (no inline script: the CSP allows scripts
and EventSource connections from the panel's own origin only). Every route
declares a role (:mod:`edge.panel.roles`), enforced before each request. Inside
the edge process ``node`` is the running :class:`edge.node.EdgeNode` (live
counters, reloads after a price change); standalone (``flask --app edge.panel
run``) it reads the database named by the edge configuration. Reads use a
read-only connection.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

csrf = CSRFProtect()


def _security_headers(resp: Response) -> Response:
    """No inline script or style, no framing, no caching of pages with store data.

    Relaxed from ``default-src 'none'`` only as far as live pages need: the panel's
    own script file (``script-src 'self'``) and its own event stream
    (``connect-src 'self'``); ``data:`` images for the pickup QR camera preview.
    """
    resp.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self';"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    # same-origin, not no-referrer: over HTTPS Flask-WTF checks that a form was posted
    # from the panel itself (WTF_CSRF_SSL_STRICT); other sites still get nothing.
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    if request.is_secure:  # served over TLS: tablets never fall back to plain HTTP
        resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if resp.mimetype in ("text/html", "application/json"):
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


class SqliteInt(IntegerConverter):
    """werkzeug's ``int`` converter bounded to SQLite's 64-bit INTEGER."""

    def __init__(self, url_map: Any, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = None, signed: bool = False) -> None:
        super().__init__(url_map, fixed_digits, min, 2**63 - 1 if max is None else max,
                         signed)


def _fmt_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "\u2014"


def _fmt_age(ts: float | None) -> str:
    if not ts:
        return "never"
    return fmt_duration(max(0.0, time.time() - ts))


def fmt_duration(s: float | None) -> str:
    """``42 s``, ``7 min``, ``3 h``: short enough for a tablet column."""
    if s is None:
        return "\u2014"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 \
        else f"{s / 3600:.0f} h"


def create_app(test_config: dict[str, Any] | None = None, node: Any = None) -> Flask:
    """Build the panel; ``test_config`` overrides (``DB_PATH``, ``SECRET_KEY``,
    ``PANEL_TRUSTED_PROXIES``: how many reverse proxies' ``X-Forwarded-For`` to trust,
    0 by default)."""
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=None,
        DB_PATH=str(node.cfg.db_path) if node is not None else None,
        # Secure: browsers still send it to http://127.0.0.1 (a secure context); a
        # panel reached over the store LAN belongs behind TLS.
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="vitrine_panel",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=64 * 1024,
        PANEL_TRUSTED_PROXIES=getattr(getattr(node, "cfg", None), "panel_trusted_proxies", 0),
    )
    if test_config:
        app.config.update(test_config)
    if not app.config["SECRET_KEY"]:
        # Random per start: nothing secret in the repository or on disk by default.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    from edge.config import EdgeConfig, load_config

    cfg = node.cfg if node is not None else load_config()
    if app.config["DB_PATH"] is None:
        app.config["DB_PATH"] = str(cfg.db_path)
    # What the device, operations and price pages need from the edge configuration.
    defaults = EdgeConfig()

    def setting(name: str) -> Any:
        return getattr(cfg, name, getattr(defaults, name))

    for key, name in (("STORE_ID", "store_id"), ("MQTT_HOST", "mqtt_host"),
                      ("MQTT_PORT", "mqtt_port"), ("BROKER_DIR", "panel_broker_dir"),
                      ("CENTRAL_URL", "central_url"), ("LAYOUT_PATH", "layout_path")):
        value = setting(name)
        app.config.setdefault(key, str(value) if isinstance(value, Path) else value)
    if node is None:
        from edge.db import connect, migrate

        db = connect(app.config["DB_PATH"])  # standalone: make sure the users table exists
        try:
            migrate(db)
        finally:
            db.conn.close()

    # Every <int:...> in a panel URL is a SQLite INTEGER: larger would overflow in the
    # query (a 500), so the router answers 404 for it, on every page present and future.
    app.url_map.converters["int"] = SqliteInt
    from . import (
        analytics,
        auth,
        clienteling,
        dashboard,
        db,
        devices,
        events,
        i18n,
        live,
        operations,
        pickup_scan,
        pickups,
        playlists,
        prices,
        quarantine,
        roles,
        screens,
        users_admin,
    )
    from .login_guard import FREE_FAILURES_PER_CLIENT, LoginThrottle, SessionRegistry

    app.extensions["vitrine_node"] = node
    #: Set when the server stops, so that open event streams end at once.
    app.extensions["vitrine_panel_stopping"] = threading.Event()
    # Per client address (guesses spread over many names) and per (user, client).
    app.extensions["vitrine_panel_throttle"] = LoginThrottle(
        free=app.config.get("PANEL_THROTTLE_LIMIT", FREE_FAILURES_PER_CLIENT))
    app.extensions["vitrine_panel_throttle_user"] = LoginThrottle()
    app.extensions["vitrine_panel_sessions"] = SessionRegistry(
        app.config["PERMANENT_SESSION_LIFETIME"].total_seconds())
    proxies = int(app.config.get("PANEL_TRUSTED_PROXIES") or 0)
    if proxies > 0:
        # Only when configured: a forged X-Forwarded-For must not pick the address
        # the throttle keys on when no proxy is in front.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    from .scanning import photo_body_limit

    app.before_request(photo_body_limit)  # before CSRF's hook reads the body
    csrf.init_app(app)
    db.init_app(app)
    for module in (auth, dashboard, devices, quarantine, events, i18n, live, users_admin,
                   operations, analytics, prices, clienteling, screens, pickups, playlists,
                   pickup_scan):
        app.register_blueprint(module.bp)
    screens.attach(app, node)
    app.before_request(i18n.select_language)
    app.before_request(roles.enforce)  # after auth's user loader, registered above
    app.add_template_filter(_fmt_time, "when")
    app.add_template_filter(_fmt_age, "age")
    app.add_template_filter(fmt_duration, "duration")
    app.add_template_global(i18n.gettext, "_")
    app.add_template_global(roles.allowed, "allowed")
    app.context_processor(operations.alarm_context)
    app.after_request(_security_headers)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[str, int]:
        return render_template("error.html", code=400, message=exc.description), 400

    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    def http_error(exc: HTTPException) -> tuple[str, int]:
        return render_template("error.html", code=exc.code, message=exc.description), \
            exc.code or 500

    return app
