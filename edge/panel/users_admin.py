"""Managers manage the panel's users: add, reset a password, disable or enable.

Passwords are generated here and shown once, in the response to the POST that
made them (``Cache-Control: no-store``), never stored in clear or sent again.
Disabling takes effect on the user's very next request (the role is read from
the database every time) and ends their open live streams within seconds.
"""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, flash, g, render_template, request
from werkzeug.wrappers import Response

from .db import read_db, write_db
from .i18n import gettext as _
from .roles import MANAGER, requires
from .users import ROLES, UserError, add_user, list_accounts, reset_password, set_disabled

bp = Blueprint("users", __name__, url_prefix="/users")
log = logging.getLogger("vitrine.edge.panel")


def _page(shown: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("users.html", users=list_accounts(read_db()), roles=ROLES,
                           shown=shown), status


@bp.route("/")
@requires(MANAGER)
def index() -> tuple[str, int]:
    return _page()


@bp.route("/add", methods=("POST",))
@requires(MANAGER)
def add() -> tuple[str, int] | Response:
    name = request.form.get("username", "").strip()
    password = secrets.token_urlsafe(15)
    try:
        add_user(write_db(), name, password, request.form.get("role", ""))
    except UserError as exc:
        flash(str(exc))
        return _page(status=400)
    log.info("panel: %s added user %s", g.user.username, name)
    return _page(shown={"username": name, "password": password}, status=201)


@bp.route("/<username>/reset", methods=("POST",))
@requires(MANAGER)
def reset(username: str) -> tuple[str, int]:
    try:
        password = reset_password(write_db(), username)
    except UserError:
        flash(_("No such user."))
        return _page(status=404)
    log.info("panel: %s reset the password of %s", g.user.username, username)
    return _page(shown={"username": username, "password": password})


@bp.route("/<username>/disable", methods=("POST",))
@requires(MANAGER)
def disable(username: str) -> tuple[str, int]:
    enable = request.form.get("enable") == "1"
    if username == g.user.username and not enable:
        flash(_("You cannot disable yourself."))
        return _page(status=400)
    try:
        set_disabled(write_db(), username, not enable)
    except UserError:
        flash(_("No such user."))
        return _page(status=404)
    log.info("panel: %s %s user %s", g.user.username, "enabled" if enable else "disabled",
             username)
    flash(_("User %(name)s enabled.", name=username) if enable
          else _("User %(name)s disabled.", name=username))
    return _page()
