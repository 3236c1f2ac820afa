"""Every row of central's database, hashed: proof that a refused call changed nothing."""

from __future__ import annotations

import hashlib
from typing import Any


def tables(tx: Any) -> list[str]:
    if tx.dialect == "postgres":
        rows = tx.all("SELECT table_name AS name FROM information_schema.tables"
                      " WHERE table_schema = current_schema() ORDER BY table_name")
    else:
        rows = tx.all("SELECT name FROM sqlite_master WHERE type = 'table'"
                      " AND name NOT LIKE 'sqlite_%' ORDER BY name")
    return [dict(r)["name"] for r in rows]


def digest(db: Any) -> str:
    """A hash of every row of every table (order-independent within a table)."""

    def read(tx: Any) -> str:
        h = hashlib.sha256()
        for name in tables(tx):
            rows = sorted(repr(sorted(dict(r).items())) for r in tx.all(f'SELECT * FROM "{name}"'))
            h.update(f"{name}:{len(rows)}\n".encode())
            for row in rows:
                h.update(row.encode() + b"\n")
        return h.hexdigest()

    return db.run(read, write=False)
