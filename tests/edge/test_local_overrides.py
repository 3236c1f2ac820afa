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
    # Nothing else prices it (no central feed here): back to the layout's price.
    assert conn.execute("SELECT price_cents FROM products WHERE gtin = ?",
                        (GTIN,)).fetchone() == (before,)


def test_a_restart_reseeding_the_layout_keeps_the_markdown(tmp_path):
    conn = _db(tmp_path)
    (before,) = conn.execute("SELECT price_cents FROM products WHERE gtin = ?",
                             (GTIN,)).fetchone()
    write_markdown(conn, LAYOUT["store_id"], Rules(), GTIN, before - 500, now=1e9)
    conn.commit()
    db = connect(tmp_path / "edge.db")  # the next start: migrate and seed again
    migrate(db)
    seed(db, {**LAYOUT, "products": [{**p, "name": p["name"] + " v2"}
                                     for p in LAYOUT["products"]]})
    assert db.conn.execute("SELECT name, price_cents, layout_price_cents FROM products "
                           "WHERE gtin = ?", (GTIN,)).fetchone()[1:] == (before - 500, before)
    write_markdown(db.conn, LAYOUT["store_id"], Rules(), GTIN, None, now=1e9)
    assert db.conn.execute("SELECT price_cents FROM products WHERE gtin = ?",
                           (GTIN,)).fetchone() == (before,)


def test_a_new_layout_price_applies_where_nothing_else_prices_the_product(tmp_path):
    conn = _db(tmp_path)
    conn.commit()
    db = connect(tmp_path / "edge.db")
    seed(db, {**LAYOUT, "products": [{**p, "price_cents": 4242} if p["gtin"] == GTIN else p
                                     for p in LAYOUT["products"]]})
    assert db.conn.execute("SELECT price_cents FROM products WHERE gtin = ?",
                           (GTIN,)).fetchone() == (4242,)
