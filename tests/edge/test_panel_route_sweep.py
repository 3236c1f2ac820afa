"""docs/permissions.md's panel matrix is what the panel does, for every route and method.

The routes come from the app's URL map, so a route added without a row in the table fails.
Every route is called with every method by an anonymous visitor and by a user of each role,
always with a valid CSRF token (a missing login check must not hide behind CSRF), and the
database is compared byte for byte around every call that must be refused, and every GET.
"""
# ruff: noqa: F811  (pytest fixtures imported from panel_fixtures are parameters here)

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from .panel_fixtures import (  # noqa: F401
    MANAGER,
    STAFF,
    _panel_db_template,
    app,
    csrf_token,
    login,
    panel_db,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
CALLERS = ("anonymous", "staff", "manager")
USERS = {"staff": STAFF, "manager": MANAGER}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: Values for the URL variables of parameterised routes (rows that exist in the fixture).
#: ``username`` is not a fixture user: resetting or disabling it logs nobody out.
SAMPLE = {"qid": "35", "filename": "panel.css", "name": "products",
          "device_id": "nfc-01", "username": "nobody", "order_id": "no-such-order",
          "playlist_id": "morning", "item_id": "hello"}
_VAR = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def matrix() -> dict[str, dict[str, str]]:
    """``{"METHOD /rule": {caller: cell}}`` from the panel-matrix block."""
    body = DOC.read_text("utf-8").split("<!-- panel-matrix -->")[1]
    body = body.split("<!-- /panel-matrix -->")[0]
    out = {}
    for line in body.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        out[cells[0].strip("`")] = dict(zip(CALLERS, cells[1:], strict=True))
    return out


def url_map(app: Flask) -> dict[str, set[str]]:
    return {rule.rule: (rule.methods or set()) - {"HEAD", "OPTIONS"}
            for rule in app.url_map.iter_rules()}


def digest(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    finally:
        conn.close()


def caller(app: Flask, who: str) -> tuple[FlaskClient, str]:
    """A client logged in as ``who`` (or anonymous) and its session's CSRF token."""
    c = app.test_client()
    if who != "anonymous":
        r = login(c, USERS[who])
        assert r.status_code == 302, f"{who} could not log in"
        return c, csrf_token(c, "/")
    return c, csrf_token(c)


def test_every_route_and_method_is_in_the_table(app):
    documented = {route for route in matrix()}
    served = {f"{m} {rule}" for rule, methods in url_map(app).items() for m in methods}
    assert served == documented


def test_every_caller_gets_the_documented_outcome_and_refusals_change_nothing(app, panel_db):
    table = matrix()
    checked = 0
    clients: dict[str, tuple[FlaskClient, str]] = {}
    for rule, methods in sorted(url_map(app).items()):
        path = _VAR.sub(lambda m: SAMPLE[m.group(1)], rule)
        for method in METHODS:
            route = f"{method} {rule}"
            for who in CALLERS:
                if who not in clients:
                    clients[who] = caller(app, who)
                client, token = clients[who]
                # Credentials for the login form; other views ignore the fields.
                form = {"csrf_token": token, "username": STAFF[0], "password": STAFF[1]}
                before = digest(panel_db)
                r = client.open(path, method=method,
                                data=form if method != "GET" else None)
                where = f"{route} as {who}: {r.status_code} {r.location}"
                changed = digest(panel_db) != before
                cell = table[route][who] if method in methods else "405"
                if cell == "405":
                    assert r.status_code == 405, where
                elif cell == "login":
                    if path.startswith(("/api/", "/live/")):  # JSON and EventSource
                        assert r.status_code == 401, where
                    else:
                        assert r.status_code == 302, where
                        assert r.location.startswith("/auth/login"), where
                elif cell == "no":
                    assert r.status_code == 403, where
                else:
                    assert cell == "yes", f"{route}: unknown cell {cell!r}"
                    # The view ran: its answer may be a 4xx for this (empty) form, never
                    # one of the refusals above, never a server error.
                    assert r.status_code < 500 and r.status_code not in (401, 403, 405), where
                    assert not (r.location or "").startswith("/auth/login?next="), where
                if cell != "yes" or method == "GET":
                    assert not changed, f"{where}: the database changed"
                checked += 1
                if rule.startswith("/auth/") and method == "POST":
                    del clients[who]  # logged in or out: start the next route afresh
    assert checked == len(url_map(app)) * len(METHODS) * len(CALLERS)
