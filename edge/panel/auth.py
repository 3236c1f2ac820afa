"""Login, logout and the ``login_required`` guard every other page uses.

The session cookie holds only the user name (signed, HttpOnly, SameSite=Strict);
the role is read from the database on every request, so removing or demoting a
user takes effect at once. Two brakes on guessing: the per-account lockout in
:mod:`edge.panel.users` and a per-client-address throttle here, which also
covers guesses spread over many (maybe unknown) user names.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

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
from .users import authenticate, get_user

bp = Blueprint("auth", __name__, url_prefix="/auth")
F = TypeVar("F", bound=Callable[..., Any])


class Throttle:
    """At most ``limit`` failed logins per client address within ``window_s`` seconds."""

    def __init__(self, limit: int = 20, window_s: float = 300.0):
        self.limit = limit
        self.window_s = window_s
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] < now - self.window_s:
            q.popleft()
        return q

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.limit

    def fail(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # bound memory under a spray of addresses
                self._failures = {k: v for k, v in self._failures.items() if v}


def _throttle() -> Throttle:
    return current_app.extensions["vitrine_panel_throttle"]


def _count_failure() -> None:
    _throttle().fail(request.remote_addr or "?")
    node = current_app.extensions.get("vitrine_node")
    if node is not None:
        node.metrics.inc("panel_login_failed")


def _safe_next(target: str | None) -> str:
    """Only same-site paths: ``next=//evil.example`` must not become an open redirect."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return url_for("dashboard.index")


@bp.before_app_request
def load_logged_in_user() -> None:
    name = session.get("user")
    g.user = get_user(read_db(), name) if name else None


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


@bp.route("/login", methods=("GET", "POST"))
def login() -> Response | tuple[str, int] | str:
    if request.method == "GET":
        return render_template("auth/login.html", next=request.args.get("next", ""))
    if _throttle().blocked(request.remote_addr or "?"):
        flash("Too many failed logins from this address; try again in a few minutes.")
        return render_template("auth/login.html", next=""), 429
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    result = authenticate(write_db(), username, password)
    if result.user is None:
        _count_failure()
        flash("This account is locked after repeated failures; try again later."
              if result.locked else "Wrong user name or password.")
        return render_template("auth/login.html", next=request.form.get("next", "")), 401
    session.clear()  # no session fixation: a fresh session for the new identity
    session.permanent = True
    session["user"] = result.user.username
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=("POST",))
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))
