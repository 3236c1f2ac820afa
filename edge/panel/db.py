"""The panel's connections to the edge database, one pair per request.

Reads go through a ``mode=ro`` connection: a page can never write by mistake,
and WAL lets it read while the writer thread commits. Only a manager's or
clerk's deliberate acts (logins, users, review marks, markdowns, stock counts,
devices added) use the read-write connection, in short autocommit statements
so they never hold the write lock for long.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flask import Flask, current_app, g


def _db_path() -> Path:
    return Path(current_app.config["DB_PATH"]).resolve()


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """A ``mode=ro`` connection of its own (event streams outlive their request's ``g``)."""
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, timeout=10,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def read_db() -> sqlite3.Connection:
    """The request's read-only connection (rows by column name)."""
    if "panel_ro" not in g:
        g.panel_ro = open_read_only(_db_path())
    return g.panel_ro


def write_db() -> sqlite3.Connection:
    """The request's read-write connection, autocommit, for deliberate acts only."""
    if "panel_rw" not in g:
        conn = sqlite3.connect(str(_db_path()), timeout=10, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        g.panel_rw = conn
    return g.panel_rw


def _close(_exc: BaseException | None = None) -> None:
    for name in ("panel_ro", "panel_rw"):
        conn = g.pop(name, None)
        if conn is not None:
            conn.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close)
