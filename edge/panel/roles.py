"""Who may open which route: every view declares a role, one hook enforces it.

Deny by default: :func:`enforce` runs before every request and refuses any
endpoint that declares no role (a new route someone forgot to guard is a 500
in development and a failing test, never an open page). Roles are ordered:
``public`` < ``staff`` < ``manager``; managers can do everything staff can.
Staff do the floor tasks (pickups, clienteling, stock counts, live events);
users, devices, prices, operations and analytics are the manager's.

Views declare their role with :func:`requires`; routes owned by other modules
that cannot carry the decorator (Flask's ``static``, the login flow) are listed
in :data:`DECLARED`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response

PUBLIC, STAFF, MANAGER = "public", "staff", "manager"
RANK = {PUBLIC: 0, STAFF: 1, MANAGER: 2}
#: Endpoints whose role is declared here rather than on the view function.
DECLARED: dict[str, str] = {"static": PUBLIC, "auth.login": PUBLIC, "auth.logout": PUBLIC}
ATTR = "_panel_role"
F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("vitrine.edge.panel")


class UndeclaredRole(LookupError):
    """A route without a declared role."""


def requires(role: str) -> Callable[[F], F]:
    """Declare the least role that may open the decorated view."""
    if role not in RANK:
        raise ValueError(f"unknown panel role {role!r}")

    def mark(view: F) -> F:
        setattr(view, ATTR, role)
        return view

    return mark


def role_of(app: Flask, endpoint: str) -> str:
    """The role ``endpoint`` declared; :class:`UndeclaredRole` when it declared none."""
    if endpoint in DECLARED:
        return DECLARED[endpoint]
    view = app.view_functions.get(endpoint)
    role = getattr(view, ATTR, None)
    if role is None:
        raise UndeclaredRole(endpoint)
    return role


def undeclared(app: Flask) -> list[str]:
    """Every endpoint in the URL map that declares no role (the test wants none)."""
    out = []
    for rule in app.url_map.iter_rules():
        try:
            role_of(app, rule.endpoint)
        except UndeclaredRole:
            out.append(rule.endpoint)
    return sorted(set(out))


def allowed(user_role: str | None, needed: str) -> bool:
    return RANK.get(user_role or PUBLIC, 0) >= RANK[needed]


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/live/")) or request.accept_mimetypes.best == \
        "application/json"


def enforce() -> Response | tuple[Response, int] | None:
    """``before_request``: anonymous -> login, too low a role -> 403, undeclared -> 500."""
    endpoint = request.endpoint
    if endpoint is None:  # 404/405: let Flask answer
        return None
    try:
        needed = role_of(current_app, endpoint)
    except UndeclaredRole:
        log.error("route %s declares no role: refused", endpoint)
        return jsonify(error="route declares no role"), 500
    if needed == PUBLIC:
        return None
    user = g.get("user")
    if user is None:
        if _wants_json():
            return jsonify(error="login required"), 401
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if not allowed(user.role, needed):
        from flask import abort

        abort(403)
    return None
