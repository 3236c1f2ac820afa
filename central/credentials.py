"""Per-store (and per-channel) API credentials: issued once, stored hashed, revocable.

A credential is a random 256-bit bearer token. Only its SHA-256 is stored: the
token has far too much entropy to brute-force, so a slow password hash would
add latency to every request and buy nothing, while a plain digest can be
looked up through a unique index. Issuing a credential for a store that has
one replaces it (one credential per store), which is also how a leaked token is
rotated; revoking takes effect on the next request, on every worker.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from central.db import Database
from central.errors import InvalidName

KINDS = ("store", "channel")
TOKEN_PREFIX = "vtc_"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a store edge, a channel backend (web, app, crm...), or the admin."""

    kind: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


ADMIN = Principal("admin", "admin")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _principal(kind: str, name: str) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        raise InvalidName(f"credential kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidName(f"invalid {kind} name {str(name)[:80]!r}: 1-64 letters, digits, "
                          "'_', '.', '-'")
    return f"{kind}:{name}"


def issue(db: Database, kind: str, name: str) -> str:
    """Create or replace the credential of ``kind:name``; return the token (shown once)."""
    principal = _principal(kind, name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.run(lambda tx: tx.execute(
        "INSERT INTO credentials (principal, kind, name, token_hash, created_at, revoked_at) "
        "VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (principal) DO UPDATE SET "
        "token_hash = excluded.token_hash, created_at = excluded.created_at, revoked_at = NULL",
        (principal, kind, name, hash_token(token), time.time())))
    return token


def revoke(db: Database, kind: str, name: str) -> bool:
    """Revoke ``kind:name``; False when it had no active credential."""
    principal = _principal(kind, name)
    cur = db.run(lambda tx: tx.execute(
        "UPDATE credentials SET revoked_at = ? WHERE principal = ? AND revoked_at IS NULL",
        (time.time(), principal)))
    return cur.rowcount > 0


def list_all(db: Database) -> list[dict[str, object]]:
    """Every credential without its hash, for the admin CLI/API."""
    rows = db.run(lambda tx: tx.all(
        "SELECT kind, name, created_at, revoked_at FROM credentials ORDER BY principal"),
        write=False)
    return [dict(row) for row in rows]


def authenticate(db: Database, token: str) -> Principal | None:
    """The active principal owning ``token``, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = db.run(lambda tx: tx.one(
        "SELECT kind, name FROM credentials WHERE token_hash = ? AND revoked_at IS NULL",
        (hash_token(token),)), write=False)
    return Principal(row["kind"], row["name"]) if row else None
