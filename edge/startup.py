"""Opening the edge database at start: one clear line per fault, and patience on a full disk.

An operator who finds the edge stopped needs to read *what* is wrong with
*which* file and *what to do*, not a traceback. Each fault the edge can meet
at start is a :class:`StartupError` whose message is that line
(``vitrine edge`` prints it and exits with status 3):

* the directory of ``db_path`` does not exist (a data disk not mounted?);
* the file is not an SQLite database, or is malformed (``quick_check``);
* the file or its directory is read-only for the edge's user.

A full disk is different: nothing is wrong with the file, space will come
back (logs rotated, an operator cleaning up), and a supervisor restarting a
crashed edge every second helps nobody. So opening, migrating and seeding wait
and retry (:func:`retry_while_disk_full`), logging CRITICAL, exactly as the
running edge's writer does with a batch it cannot commit.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from .config import EdgeConfig
from .db import MigrationError, connect, migrate

log = logging.getLogger("vitrine.edge")
T = TypeVar("T")
SQLITE_MAGIC = b"SQLite format 3\x00"


class StartupError(RuntimeError):
    """The edge cannot use its database; the message is the one line to show."""


def is_disk_full(exc: BaseException) -> bool:
    """Does ``exc`` mean "no space left" (or a related transient I/O refusal)?"""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and (
        "disk is full" in text or "disk i/o error" in text)


def retry_while_disk_full(fn: Callable[[], T], retry_s: float, *,
                          what: str = "start-up") -> T:
    """Run ``fn``; while it fails because the disk is full, log CRITICAL, wait, retry."""
    attempts = 0
    while True:
        try:
            return fn()
        except (sqlite3.OperationalError, OSError) as exc:
            if not is_disk_full(exc):
                raise
            attempts += 1
            log.critical("%s: the disk is full (%s); waiting %.0f s and retrying (attempt %d)."
                         " Free space on the edge's data disk.", what, exc, retry_s, attempts)
            time.sleep(retry_s)


def check_file(path: Path) -> None:
    """Refuse a missing directory, a file that is not SQLite, a read-only file or directory."""
    parent = path.parent
    if not parent.is_dir():
        raise StartupError(f"{path}: directory {parent} does not exist: create it (writable by"
                           " the edge's user) or set db_path to the edge's data directory")
    if path.exists():
        if not path.is_file():
            raise StartupError(f"{path} is not a file: set db_path to the edge's database")
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise StartupError(f"{path} cannot be read ({exc.strerror}): give the edge's user"
                               " read and write access to it") from None
        if head and head != SQLITE_MAGIC:
            raise StartupError(f"{path} is not an SQLite database: restore a backup with"
                               f" `vitrine edge restore BACKUP --db {path}`, or move the file"
                               " away to start empty")
        if not os.access(path, os.W_OK):
            raise StartupError(f"{path} is read-only for this user: give the edge's user write"
                               " access to it (and to its directory, for the -wal and -shm"
                               " files)")
    if not os.access(parent, os.W_OK):
        raise StartupError(f"{path}: directory {parent} is read-only for this user: make it"
                           " writable by the edge's user (SQLite writes -wal and -shm files"
                           " beside the database)")


def integrity_problem(conn: sqlite3.Connection, mode: str) -> str | None:
    """First line of ``PRAGMA quick_check`` (or ``integrity_check``) when it is not ok."""
    if mode == "off":
        return None
    pragma = "integrity_check" if mode == "full" else "quick_check"
    rows = conn.execute(f"PRAGMA {pragma}(5)").fetchall()
    if rows and rows[0][0] == "ok":
        return None
    return "; ".join(str(r[0]) for r in rows)[:300] or "no answer"


def open_edge_db(cfg: EdgeConfig) -> sqlite_utils.Database:
    """Open, check and migrate the edge database, or raise :class:`StartupError`."""
    path = Path(cfg.db_path)
    if str(path) != ":memory:":
        check_file(path)
    if cfg.integrity_check not in ("quick", "full", "off"):
        raise StartupError(f"integrity_check must be quick, full or off, not"
                           f" {cfg.integrity_check!r}")

    def attempt() -> sqlite_utils.Database:
        db = connect(path, synchronous=cfg.sqlite_synchronous,
                     busy_timeout_s=cfg.sqlite_busy_timeout_s, create_dirs=False)
        try:
            problem = integrity_problem(db.conn, cfg.integrity_check)
            if problem:
                raise StartupError(
                    f"{path} is corrupt ({problem}): stop here, keep the file for analysis,"
                    f" restore the last backup with `vitrine edge restore BACKUP --db {path}`;"
                    " unacknowledged messages are still at the broker")
            migrate(db)
        except BaseException:
            db.conn.close()
            raise
        return db

    try:
        return retry_while_disk_full(attempt, cfg.startup_retry_s, what=f"opening {path}")
    except MigrationError as exc:
        raise StartupError(f"{path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "not a database" in text or "file is encrypted" in text:
            raise StartupError(f"{path} is not an SQLite database: restore a backup with"
                               f" `vitrine edge restore BACKUP --db {path}`, or move the file"
                               " away to start empty") from None
        if "malformed" in text:
            raise StartupError(f"{path} is corrupt ({text}): restore the last backup with"
                               f" `vitrine edge restore BACKUP --db {path}`") from None
        if "readonly" in text or "read-only" in text:
            raise StartupError(f"{path} is read-only ({text}): give the edge's user write"
                               " access to the file and its directory") from None
        if "unable to open" in text:
            raise StartupError(f"{path} cannot be opened ({text}): check the path and the"
                               " permissions of its directory") from None
        raise StartupError(f"{path}: {text}") from None
