"""Login, logout and the ``login_required`` guard every other page uses.

The signed session cookie (HttpOnly, SameSite=Strict) holds the user name, a
session id registered server-side and a stamp of the user's password hash
(:mod:`edge.panel.login_guard`): logging out, or a password reset, ends the
session for good, not just in this browser. The role is read from the
database on every request, so removing or demoting a user takes effect at
once. Guessing is slowed per (user name, client) and per client with growing
delays, never by locking an account, and every refusal reads the same whether
the name exists or not. The client is the connecting address, or the
``X-Forwarded-For`` address only when ``PANEL_TRUSTED_PROXIES`` says how many
proxies to trust (:func:`edge.panel.create_app`); a device cookie from an
earlier successful login keys the client by device instead.
"""

from __future__ import annotations

import functools
import hmac
import math
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from .db import read_db, write_db
from .i18n import gettext as _
from .login_guard import (
    DEVICE_COOKIE,
    DEVICE_MAX_AGE_S,
    LoginThrottle,
    SessionRegistry,
    device_of,
    issue_device,
)
from .users import authenticate, get_user, session_stamp

bp = Blueprint("auth", __name__, url_prefix="/auth")
F = TypeVar("F", bound=Callable[..., Any])

#: Longest user name looked at (the longest valid one is 64); longer is a wrong name.
_MAX_NAME = 128
#: Longest ``next`` kept; a longer one falls back to the dashboard.
_MAX_NEXT = 2048


def _guard(name: str) -> Any:
    return current_app.extensions[name]


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


def _count(metric: str) -> None:
    node = current_app.extensions.get("vitrine_node")
    if node is not None:
        node.metrics.inc(metric)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: no scheme, no host, nothing a browser would strip.

    ``//evil.example`` and ``/\\evil.example`` are other sites; so is
    ``next=/%09/evil.example`` (a tab after the slash), because browsers drop tabs and
    newlines from URLs; a CR/LF would also split the ``Location`` header. Only
    printable ASCII without backslashes passes, then ``urlsplit`` must find no
    scheme and no host.
    """
    if (target and len(target) <= _MAX_NEXT and target.startswith("/")
            and not target.startswith("//") and "\\" not in target
            and all(32 < ord(c) < 127 for c in target)):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("dashboard.index")


@bp.before_app_request
def load_logged_in_user() -> None:
    g.user = None
    name = session.get("user")
    if not isinstance(name, str):
        return
    registry: SessionRegistry = _guard("vitrine_panel_sessions")
    stamp = session_stamp(read_db(), name, _secret())
    if (registry.user_of(session.get("sid")) != name or stamp is None
            or not hmac.compare_digest(str(session.get("stamp", "")), stamp)):
        session.clear()  # logged out, reset, expired, or from before a restart
        return
    g.user = get_user(read_db(), name)


def login_required(view: F) -> F:
    """Send anonymous visitors to the login page (or a 401 for the JSON API)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            if request.path.startswith("/api/"):
                return jsonify(error="login required"), 401
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _refuse_throttled(wait: float) -> tuple[str, int, dict[str, str]]:
    _count("panel_login_throttled")
    seconds = max(1, math.ceil(wait))
    flash(_("Too many failed logins; try again in %(s)s s.", s=seconds))
    return render_template("auth/login.html", next=""), 429, {"Retry-After": str(seconds)}


@bp.route("/login", methods=("GET", "POST"))
def login() -> Any:
    if request.method == "GET":
        return render_template("auth/login.html", next=request.args.get("next", "")[:_MAX_NEXT])
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "?"
    device = device_of(_secret(), request.cookies.get(DEVICE_COOKIE), username)
    user_key = f"{username.lower()[:_MAX_NAME]}|" + (f"dev:{device}" if device
                                                     else f"ip:{address}")
    per_user: LoginThrottle = _guard("vitrine_panel_throttle_user")
    per_client: LoginThrottle = _guard("vitrine_panel_throttle")
    # A known device is not slowed by what strangers at the same address do.
    wait = max(per_user.wait(user_key), 0.0 if device else per_client.wait(f"ip:{address}"))
    if wait > 0:
        return _refuse_throttled(wait)
    result = (authenticate(write_db(), username, password) if len(username) <= _MAX_NAME
              else None)
    if result is None or result.user is None:
        per_user.fail(user_key)
        if not device:
            per_client.fail(f"ip:{address}")
        _count("panel_login_failed")
        flash(_("Wrong user name or password."))
        return render_template("auth/login.html", next=request.form.get("next", "")), 401
    per_user.forget(user_key)
    user = result.user
    _guard("vitrine_panel_sessions").close(session.get("sid"))  # a re-login ends the old one
    session.clear()  # no session fixation: a fresh session for the new identity
    session.permanent = True
    session["user"] = user.username
    session["sid"] = _guard("vitrine_panel_sessions").open(user.username)
    session["stamp"] = session_stamp(write_db(), user.username, _secret())
    resp = redirect(_safe_next(request.form.get("next")))
    resp.set_cookie(DEVICE_COOKIE, issue_device(_secret(), user.username, device),
                    max_age=DEVICE_MAX_AGE_S, secure=True, httponly=True, samesite="Strict",
                    path="/auth/")
    return resp


@bp.route("/logout", methods=("POST",))
def logout() -> Response:
    _guard("vitrine_panel_sessions").close(session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login"))
