"""Panel users, in the edge database (table ``panel_users``, migration 0003).

Passwords are stored only as werkzeug hashes (scrypt by default, PBKDF2 accepted),
like the broker's device credentials: nothing on the edge disk can be replayed.
Accounts are never locked: a lockout lets any stranger lock the manager out by
typing wrong passwords. Guessing is slowed instead per (user, client) with
growing delays (:mod:`edge.panel.login_guard`); ``failed_logins`` still counts
wrong passwords in a row, for the operator. Unknown names cost one hash check
too, so response time does not tell which names exist.

Also the small ``vitrine edge panel-user`` command that creates them.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import sys
import time
from dataclasses import dataclass
from functools import lru_cache

from werkzeug.security import check_password_hash, generate_password_hash

ROLES = ("manager", "staff")
MIN_PASSWORD = 10
#: werkzeug's method for new hashes: its default, scrypt at n=2**15 (~32 MiB and tens of
#: milliseconds a check, on purpose). Only the test suite's override (tests/conftest.py)
#: lowers n, for speed; no setting, file or variable reaches it in production.
PASSWORD_METHOD = "scrypt"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class UserError(ValueError):
    """A bad user name, role or password."""


@dataclass(frozen=True)
class PanelUser:
    username: str
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"


@dataclass(frozen=True)
class LoginResult:
    """``user`` on success, None for a wrong name or password (the two look alike)."""

    user: PanelUser | None


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=PASSWORD_METHOD)


def add_user(conn: sqlite3.Connection, username: str, password: str, role: str,
             *, replace: bool = False) -> PanelUser:
    """Create (or with ``replace`` reset) a panel user; the password is hashed here."""
    if not _NAME.fullmatch(username):
        raise UserError("user name: 1-64 characters of letters, digits, '_', '.', '-'")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    try:
        conn.execute(f"{verb} INTO panel_users (username, password_hash, role, created_at)"
                     " VALUES (?, ?, ?, ?)",
                     (username, generate_password_hash(password, method=PASSWORD_METHOD), role,
                      time.time()))
    except sqlite3.IntegrityError:
        raise UserError(f"user {username!r} exists (use --reset)") from None
    return PanelUser(username, role)


def create_user(db_path: str | os.PathLike[str], username: str, password: str, role: str,
                *, replace: bool = False) -> PanelUser:
    """:func:`add_user` on a connection of its own, never the edge writer's (demo, tests)."""
    conn = sqlite3.connect(str(db_path), timeout=10, isolation_level=None)
    try:
        return add_user(conn, username, password, role, replace=replace)
    finally:
        conn.close()


def get_user(conn: sqlite3.Connection, username: str) -> PanelUser | None:
    """The active user ``username``; a disabled account is no user at all."""
    row = conn.execute("SELECT username, role FROM panel_users WHERE username = ?"
                       " AND disabled = 0", (username,)).fetchone()
    return PanelUser(row[0], row[1]) if row else None


@dataclass(frozen=True)
class UserRow:
    """A user as the managers' user page lists them."""

    username: str
    role: str
    disabled: bool
    last_login_at: float | None
    locked_until: float | None


def list_accounts(conn: sqlite3.Connection) -> list[UserRow]:
    rows = conn.execute("SELECT username, role, disabled, last_login_at, locked_until"
                        " FROM panel_users ORDER BY username")
    return [UserRow(u, r, bool(d), last, locked) for u, r, d, last, locked in rows]


def reset_password(conn: sqlite3.Connection, username: str) -> str:
    """A new generated password for ``username`` (returned once), lockout cleared."""
    password = secrets.token_urlsafe(15)
    cur = conn.execute("UPDATE panel_users SET password_hash = ?, failed_logins = 0,"
                       " locked_until = NULL WHERE username = ?",
                       (generate_password_hash(password, method=PASSWORD_METHOD), username))
    if cur.rowcount == 0:
        raise UserError(f"no user {username!r}")
    return password


def set_disabled(conn: sqlite3.Connection, username: str, disabled: bool) -> None:
    """Disable (refused at login and on every request at once) or enable an account."""
    cur = conn.execute("UPDATE panel_users SET disabled = ? WHERE username = ?",
                       (int(disabled), username))
    if cur.rowcount == 0:
        raise UserError(f"no user {username!r}")


def list_users(conn: sqlite3.Connection) -> list[PanelUser]:
    rows = conn.execute("SELECT username, role FROM panel_users ORDER BY username")
    return [PanelUser(u, r) for u, r in rows]


def failed_logins(conn: sqlite3.Connection, username: str) -> tuple[int, float | None]:
    """``(failures in a row, locked_until)`` for ``username``; for tests and the CLI."""
    row = conn.execute("SELECT failed_logins, locked_until FROM panel_users WHERE username = ?",
                       (username,)).fetchone()
    return (row[0], row[1]) if row else (0, None)


def authenticate(conn: sqlite3.Connection, username: str, password: str,
                 now: float | None = None) -> LoginResult:
    """Check a login and record its outcome (failure count, last login)."""
    now = time.time() if now is None else now
    row = conn.execute("SELECT role, password_hash, locked_until FROM panel_users"
                       " WHERE username = ? AND disabled = 0", (username,)).fetchone()
    if row is None:  # unknown and disabled accounts look alike
        check_password_hash(_dummy_hash(), password)
        return LoginResult(None)
    role, pw_hash, _locked_until = row  # locks of older versions are ignored
    if check_password_hash(pw_hash, password):
        conn.execute("UPDATE panel_users SET failed_logins = 0, locked_until = NULL,"
                     " last_login_at = ? WHERE username = ?", (now, username))
        return LoginResult(PanelUser(username, role))
    # Increment in SQL: two guesses racing on two panel threads both count.
    conn.execute("UPDATE panel_users SET failed_logins = failed_logins + 1 WHERE username = ?",
                 (username,))
    return LoginResult(None)


def session_stamp(conn: sqlite3.Connection, username: str, secret_key: str) -> str | None:
    """A fingerprint of ``username``'s password hash, or None for no such user.

    A session records the stamp it was opened with; a password reset changes
    the hash, so the stamp, so every session opened with the old password ends
    (the stamp is keyed by the panel's secret: the cookie never carries anything
    derived from the hash alone).
    """
    row = conn.execute("SELECT password_hash FROM panel_users WHERE username = ?",
                       (username,)).fetchone()
    if row is None:
        return None
    return hmac.new(secret_key.encode(), row[0].encode(), hashlib.sha256).hexdigest()[:32]


# -- vitrine edge panel-user ----------------------------------------------------------
def main(argv: list[str]) -> int:
    """``vitrine edge panel-user [--db PATH] add NAME --role R | list``."""
    from edge.config import ConfigError, load_config
    from edge.db import connect, migrate

    p = argparse.ArgumentParser(prog="vitrine edge panel-user",
                                description="users of the store manager's web panel")
    p.add_argument("--config", help="TOML file (default: $VITRINE_CONFIG)")
    p.add_argument("--db", dest="db_path")
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="create a user with a generated password, shown once")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--reset", action="store_true", help="replace an existing user")
    add.add_argument("--password-file", help="write the password here (0600), not stdout")
    sub.add_parser("list")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, db_path=args.db_path)
    except (ConfigError, OSError) as exc:
        print(f"vitrine edge panel-user: configuration: {exc}", file=sys.stderr)
        return 2
    db = connect(cfg.db_path)
    try:
        migrate(db)
        if args.action == "list":
            for user in list_users(db.conn):
                print(f"{user.username}\t{user.role}")
            return 0
        password = secrets.token_urlsafe(15)
        add_user(db.conn, args.username, password, args.role, replace=args.reset)
    except UserError as exc:
        print(f"vitrine edge panel-user: {exc}", file=sys.stderr)
        return 2
    finally:
        db.conn.close()
    if args.password_file:
        fd = os.open(args.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w") as fh:
            fh.write(password + "\n")
    else:
        print(f"{args.username} ({args.role}) password: {password}")
    return 0
