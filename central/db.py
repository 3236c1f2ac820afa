"""Database access for SQLite (default) and PostgreSQL, behind one small interface.

SQL is written once with ``?`` placeholders and translated for psycopg, so every
query the service runs is exercised on both engines by the same tests. Only
the few statements that differ (JSON editing, serial keys) are dialect-aware.
Transactions are short and explicit: a write transaction on SQLite starts with
``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read lock, and on
PostgreSQL a deadlock or serialization failure is retried, which is what lets
several stateless workers share one database safely.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("central.db")

T = TypeVar("T")

#: Bound parameters per statement; below SQLite's 32766 and PostgreSQL's 65535.
MAX_PARAMS = 30_000
#: PostgreSQL array types of the non-text columns bulk-inserted with ``unnest``.
PG_TYPES = {"occurred_at": "float8", "ingested_at": "float8", "created_at": "float8",
            "linked_at": "float8", "erased_at": "float8", "received_at": "float8",
            "updated_at": "float8", "points": "int8", "granted": "int2",
            "recorded_at": "float8", "identified_at": "float8", "present_at": "float8",
            "seq": "int8", "shown_from": "float8", "shown_until": "float8",
            "interest_at": "float8", "lag_s": "float8", "window_s": "float8",
            "same_product": "int2"}
#: Attempts of a transaction that lost a deadlock or serialization race.
RETRIES = 5


class Tx:
    """One open transaction; ``execute`` takes ``?`` placeholders on both engines."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(_translate(sql, self.dialect), params)

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """The same statement once per row of parameters (psycopg pipelines them)."""
        self.conn.cursor().executemany(_translate(sql, self.dialect), rows)

    def lock(self, key: str, shared: bool = False) -> None:
        """Hold a lock named ``key`` until this transaction ends (PostgreSQL advisory lock).

        On SQLite every write transaction is ``BEGIN IMMEDIATE``: writers are already
        one at a time, so there is nothing to take. ``shared`` locks do not exclude
        each other, only the exclusive one.
        """
        if self.dialect == "postgres":
            mode = "_shared" if shared else ""
            self.execute(f"SELECT pg_advisory_xact_lock{mode}(hashtextextended(?, 0))", (key,))

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any | None:
        return self.execute(sql, params).fetchone()

    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        conflict: str = "",
        returning: str | None = None,
    ) -> list[Any]:
        """Multi-row ``INSERT ... VALUES (..),(..)`` in as few statements as parameters allow.

        One statement per few hundred rows instead of one round trip per row is
        what makes ingest reach thousands of events per second.
        """
        if not rows:
            return []
        if self.dialect == "postgres":
            return self._insert_unnest(table, columns, rows, conflict, returning)
        width = len(columns)
        per_stmt = max(1, MAX_PARAMS // width)
        group = "(" + ",".join("?" * width) + ")"
        out: list[Any] = []
        for start in range(0, len(rows), per_stmt):
            chunk = rows[start:start + per_stmt]
            sql = (f"INSERT INTO {table} ({','.join(columns)}) VALUES "
                   + ",".join([group] * len(chunk)) + (f" {conflict}" if conflict else "")
                   + (f" RETURNING {returning}" if returning else ""))
            params = [value for row in chunk for value in row]
            cur = self.execute(sql, params)
            if returning:
                out.extend(cur.fetchall())
        return out

    def _insert_unnest(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                       conflict: str, returning: str | None) -> list[Any]:
        """PostgreSQL: one array parameter per column, whatever the row count.

        A statement with thousands of placeholders spends more time being parsed
        by the driver than executed; ``unnest`` of typed arrays keeps the
        statement tiny and constant, so it is also prepared once per connection.
        """
        arrays = [list(col) for col in zip(*rows, strict=True)]
        # %b: binary arrays, so JSON payloads are not regex-escaped into array literals.
        casts = ",".join(f"%b::{PG_TYPES.get(c, 'text')}[]" for c in columns)
        sql = (f"INSERT INTO {table} ({','.join(columns)}) SELECT * FROM unnest({casts})"
               + (f" {conflict}" if conflict else "")
               + (f" RETURNING {returning}" if returning else ""))
        cur = self.conn.execute(sql, arrays)
        return cur.fetchall() if returning else []

    def member(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column IN (...)`` as SQL and parameters; one array parameter on PostgreSQL.

        A long ``IN`` list is a new statement text for every length, which the
        driver re-parses each time; ``= ANY(array)`` stays one constant statement.
        """
        if self.dialect == "postgres":
            return f"{column} = ANY(?)", [list(values)]
        return f"{column} IN {self.in_list(values)}", list(values)

    def in_list(self, values: Sequence[Any]) -> str:
        """``(?,?,?)`` for an ``IN`` clause of ``values`` (never empty: ``(NULL)``)."""
        return "(" + ",".join("?" * len(values)) + ")" if values else "(NULL)"


@lru_cache(maxsize=1024)
def _translate(sql: str, dialect: str) -> str:
    return sql.replace("?", "%s") if dialect == "postgres" else sql


class Database(ABC):
    """Connection factory for one engine; cheap to share across threads."""

    dialect: str

    @abstractmethod
    def transaction(self, write: bool = True) -> AbstractContextManager[Tx]:
        """A transaction on a pooled connection (a context manager yielding :class:`Tx`)."""

    def run(self, fn: Callable[[Tx], T], write: bool = True) -> T:
        """Run ``fn`` in a transaction, retrying when the engine reports a lost race."""
        for attempt in range(RETRIES):
            try:
                with self.transaction(write) as tx:
                    return fn(tx)
            except Exception as exc:
                if not self._retryable(exc) or attempt == RETRIES - 1:
                    raise
                log.warning("transaction retried after %s (attempt %d)", type(exc).__name__,
                            attempt + 1)
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _retryable(self, exc: Exception) -> bool:
        return False

    def close(self) -> None:  # noqa: B027 - a no-op by default: SQLite pools nothing
        """Release pooled connections (PostgreSQL overrides this)."""


class SqliteDatabase(Database):
    """SQLite in WAL mode; one connection per transaction (connecting costs microseconds)."""

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        # FULL: an acknowledged order or event batch survives a power cut.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield Tx(conn, self.dialect)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _retryable(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class PostgresDatabase(Database):
    """PostgreSQL through a psycopg connection pool owned by this worker process."""

    dialect = "postgres"

    def __init__(self, url: str, min_size: int = 1, max_size: int = 8) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.url = url
        self.pool = ConnectionPool(url, min_size=min_size, max_size=max_size, open=True,
                                   kwargs={"row_factory": dict_row}, timeout=30,
                                   name="central")
        self.pool.wait(timeout=30)

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        with self.pool.connection() as conn, conn.transaction():
            yield Tx(conn, self.dialect)

    def _retryable(self, exc: Exception) -> bool:
        from psycopg import errors

        return isinstance(exc, errors.DeadlockDetected | errors.SerializationFailure)

    def close(self) -> None:
        self.pool.close()


def open_database(url: str | None, sqlite_path: str | Path, pool_min: int = 1,
                  pool_max: int = 8) -> Database:
    """PostgreSQL when ``url`` is given, else SQLite at ``sqlite_path``."""
    if url:
        return PostgresDatabase(url, pool_min, pool_max)
    return SqliteDatabase(sqlite_path)
