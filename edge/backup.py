"""Online backup and restore of the edge database (SQLite's backup API).

``vitrine edge backup DEST`` copies the live database while the edge runs: the
backup API copies pages in steps under a read transaction, so in WAL mode the
writer is never stopped, and the copy is a consistent snapshot. The copy is
written beside ``DEST``, checked (``quick_check``), then renamed into place, so
a half-written backup never carries the final name.

``vitrine edge restore BACKUP`` puts a backup back: only while no edge runs on
the database (the edge holds ``{db}.lock`` while it runs), only from a file
that passes ``quick_check``; the database it replaces is kept beside it as
``{db}.replaced-{time}`` (with its -wal file) for analysis. Messages the edge
had committed after the backup was taken are gone from the database; those not
yet acknowledged are still at the broker and arrive again at the next start.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import IO

from .startup import SQLITE_MAGIC, StartupError, is_disk_full


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def hold_lock(db_path: Path) -> IO[str]:
    """Take ``{db}.lock`` for this process's lifetime; StartupError if another holds it."""
    try:
        fh = open(lock_path(db_path), "a+")  # noqa: SIM115 - held open until the process ends
    except OSError as exc:
        if is_disk_full(exc):
            raise
        raise StartupError(f"{db_path}: cannot create its lock file {lock_path(db_path)}"
                           f" ({exc.strerror}): make the directory writable by the edge's"
                           " user") from None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise StartupError(f"{db_path} is in use by another edge process (lock"
                           f" {lock_path(db_path)}): stop it first") from None
    return fh


def _quick_check(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA quick_check(5)").fetchall()
    finally:
        conn.close()
    return "; ".join(str(r[0]) for r in rows)


def backup(db_path: Path, dest: Path, pages_per_step: int = 1024) -> dict[str, object]:
    """Copy the live database at ``db_path`` to ``dest``; return what was written."""
    if not db_path.is_file():
        raise StartupError(f"{db_path} does not exist: nothing to back up")
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(tmp)
    try:
        # Small steps with a pause between them: the writer keeps the disk to itself
        # most of the time even on a slow store box.
        src.backup(dst, pages=pages_per_step, sleep=0.001)
    except sqlite3.DatabaseError as exc:
        dst.close()
        tmp.unlink(missing_ok=True)
        raise StartupError(f"backup of {db_path} failed: {exc}") from None
    finally:
        src.close()
    dst.execute("PRAGMA journal_mode=DELETE")
    dst.close()
    check = _quick_check(tmp)
    if check != "ok":
        tmp.unlink(missing_ok=True)
        raise StartupError(f"backup of {db_path} does not pass quick_check ({check}): the"
                           " database itself may be corrupt")
    os.replace(tmp, dest)
    return {"backup": str(dest), "bytes": dest.stat().st_size, "at": time.time()}


def restore(backup_path: Path, db_path: Path) -> dict[str, object]:
    """Replace the (stopped) edge's database by ``backup_path``; keep the old one aside."""
    if not backup_path.is_file():
        raise StartupError(f"{backup_path} does not exist")
    with open(backup_path, "rb") as fh:
        if fh.read(16) != SQLITE_MAGIC:
            raise StartupError(f"{backup_path} is not an SQLite database")
    check = _quick_check(backup_path)
    if check != "ok":
        raise StartupError(f"{backup_path} does not pass quick_check ({check}): choose an"
                           " older backup")
    if not db_path.parent.is_dir():
        raise StartupError(f"{db_path}: directory {db_path.parent} does not exist")
    lock = hold_lock(db_path)
    try:
        kept = None
        if db_path.exists():
            kept = db_path.with_name(f"{db_path.name}.replaced-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                old = Path(str(db_path) + suffix)
                if old.exists():
                    os.replace(old, Path(str(kept) + suffix))
        src = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
        dst = sqlite3.connect(db_path)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            src.close()
            dst.close()
    finally:
        lock.close()
    return {"restored": str(db_path), "from": str(backup_path),
            "previous_kept_as": str(kept) if kept else None}


def main(argv: list[str], db_default: Path) -> int:
    """``vitrine edge backup DEST [--db PATH]`` / ``vitrine edge restore BACKUP [--db PATH]``."""
    p = argparse.ArgumentParser(prog="vitrine edge")
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("backup", help="copy the live database (the edge may keep running)")
    b.add_argument("dest", type=Path)
    r = sub.add_parser("restore", help="put a backup back (the edge must be stopped)")
    r.add_argument("backup", type=Path)
    for sp in (b, r):
        sp.add_argument("--db", type=Path, default=db_default)
    args = p.parse_args(argv)
    try:
        if args.action == "backup":
            out = backup(args.db, args.dest)
        else:
            out = restore(args.backup, args.db)
    except (StartupError, sqlite3.Error, OSError) as exc:
        print(f"vitrine edge {args.action}: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(out))
    return 0
