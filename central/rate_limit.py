"""Per-credential rate limit of customer lookups, shared by every worker through the database.

A store token is used by a handful of tablets; a few lookups a second is
generous for them, while a leaked token used to walk the customer ids is
slowed to the same pace (and the 404 it gets for customers it may not see is
the same as for customers who do not exist).

It is a token bucket per credential, kept in the database (table
``rate_buckets``, one row per credential) rather than in a worker's memory, so
``N`` gunicorn workers give a credential the configured rate, not ``N`` times
it. The row is read and written in one short write transaction, locked
(``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) so two workers
cannot both spend the last token. A refused lookup takes no token.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from central.db import Database, Tx


class RateLimiter:
    """``allow(key, per_minute)`` -> seconds to wait (0.0: allowed, one token taken)."""

    def __init__(self, db: Database, clock: Callable[[], float] | None = None) -> None:
        self._db = db
        self._clock = clock or time.time  # wall clock: workers are separate processes

    def allow(self, key: str, per_minute: int) -> float:
        now = self._clock()
        return self._db.run(lambda tx: _take(tx, key, float(per_minute), now))


def _take(tx: Tx, key: str, capacity: float, now: float) -> float:
    tx.execute("INSERT INTO rate_buckets (credential, tokens, refilled_at) VALUES (?, ?, ?) "
               "ON CONFLICT (credential) DO NOTHING", (key, capacity, now))
    lock = " FOR UPDATE" if tx.dialect == "postgres" else ""
    row = tx.one(f"SELECT tokens, refilled_at FROM rate_buckets WHERE credential = ?{lock}", (key,))
    rate = capacity / 60.0
    # A clock stepping back between workers must not mint tokens: elapsed >= 0.
    tokens = min(capacity, float(row["tokens"]) + max(0.0, now - float(row["refilled_at"])) * rate)
    if tokens >= 1.0:
        tx.execute("UPDATE rate_buckets SET tokens = ?, refilled_at = ? WHERE credential = ?",
                   (tokens - 1.0, max(now, float(row["refilled_at"])), key))
        return 0.0
    return (1.0 - tokens) / rate
