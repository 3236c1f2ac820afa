"""The store's own markdowns and shelf counts, one writer for the sync client and the panel."""

from __future__ import annotations

from edge.db import connect, migrate
from edge.local_overrides import write_markdown, write_store_count
from edge.rules import Rules
from edge.seed import seed

from .conftest import GTIN, LAYOUT


def _db(tmp_path):
    db = connect(tmp_path / "edge.db")
    migrate(db)
    seed(db, LAYOUT)
    return db.conn


def test_an_older_count_never_replaces_a_newer_one(tmp_path):
    conn = _db(tmp_path)
    write_store_count(conn, GTIN, 7, at=2000.0, counted_by="a")
    write_store_count(conn, GTIN, 3, at=1000.0, counted_by="b")  # arrives late
    assert conn.execute("SELECT quantity, counted_by FROM local_stock_counts").fetchall() == [
        (7, "a")]
    write_store_count(conn, GTIN, 5, at=3000.0, counted_by="c")
    assert conn.execute("SELECT quantity FROM local_stock_counts").fetchall() == [(5,)]


def test_a_markdown_reprices_and_can_be_removed(tmp_path):
    conn = _db(tmp_path)
    (before,) = conn.execute("SELECT price_cents FROM products WHERE gtin = ?",
                             (GTIN,)).fetchone()
    write_markdown(conn, LAYOUT["store_id"], Rules(), GTIN, before - 1000, now=1e9,
                   set_by="manager")
    assert conn.execute("SELECT price_cents FROM products WHERE gtin = ?",
                        (GTIN,)).fetchone() == (before - 1000,)
    write_markdown(conn, LAYOUT["store_id"], Rules(), GTIN, None, now=1e9)
    assert conn.execute("SELECT count(*) FROM local_markdowns").fetchone() == (0,)
