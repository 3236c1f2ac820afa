"""Loyalty identification at the edge: verify signed tokens, refuse replays.

Verification itself is the contract's (:mod:`contract.loyalty`); the edge adds
the durable part: app tokens are single-use, so their nonce is recorded in the
same transaction as the event that used it. A crash before commit forgets both,
and the redelivered message is then accepted once, as it should be.
"""

from __future__ import annotations

import sqlite3

from contract.loyalty import TokenClaims, TokenReplayed, verify_token


class Identifier:
    def __init__(self, keyring: dict[str, bytes], leeway_s: float = 30.0):
        self.keyring = keyring
        self.leeway_s = leeway_s

    def verify(self, conn: sqlite3.Connection, token: str, *, now: float,
               card_uid: str | None) -> TokenClaims:
        """Claims of a valid, unreplayed token; raise ``TokenError`` otherwise."""
        claims = verify_token(self.keyring, token, now=now, card_uid=card_uid,
                              leeway_s=self.leeway_s)
        if claims.kind == "app":
            try:
                conn.execute("INSERT INTO token_nonces VALUES (?, ?)",
                             (claims.nonce, claims.expires_at + self.leeway_s))
            except sqlite3.IntegrityError:
                raise TokenReplayed("replayed") from None
        return claims

    @staticmethod
    def expire_nonces(conn: sqlite3.Connection, now: float) -> int:
        return conn.execute("DELETE FROM token_nonces WHERE expires_at < ?", (now,)).rowcount
