"""Edge sync against a real central over HTTP, on SQLite and PostgreSQL.

Full then delta, atomic apply, cadences, the store running on its local copy
while central is down, and the rules deciding what products shows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from central.server import ServerThread
from edge.catalogue import Catalogue
from edge.db import connect, migrate
from edge.sync import SyncClient
from tests.central.conftest import STORE, Central

G1, G2, G3 = "00000000000017", "00000000000024", "00000000000031"
SEEDED = "09506000134352"
T0 = 1_800_000_000.0
DAY = 86_400.0


class Clock:
    """A hand-driven clock: cadences and backoff tested without sleeping."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def edge_db(tmp_path: Path) -> Path:
    """A migrated edge database with one product seeded from the store layout."""
    path = tmp_path / "edge.db"
    db = connect(path)
    migrate(db)
    db.conn.execute("INSERT INTO products (gtin, name, price_cents, currency) VALUES "
                    "(?, 'Layout shoe', 8999, 'EUR')", (SEEDED,))
    db.conn.close()
    return path


def load(central: Central, feed: str, items: list[dict[str, Any]],
         delete: list[dict[str, Any]] | None = None) -> int:
    body: dict[str, Any] = {"items": items, **({"delete": delete} if delete else {})}
    status, resp = central.api("PUT", f"/api/v1/admin/feeds/{feed}", body)
    assert status == 200, resp
    return resp["version"]


def client(edge_db: Path, central: Central, clock: Clock | None = None, **kw: Any) -> SyncClient:
    return SyncClient(str(edge_db), central.url, central.store_token, kw.pop("cadences", None),
                      store_id=STORE, clock=clock or Clock(), **kw)


def products(edge_db: Path) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(edge_db)
    try:
        return {r[0]: tuple(r[1:]) for r in conn.execute(
            "SELECT gtin, name, category, price_cents FROM products")}
    finally:
        conn.close()


def shoe(gtin: str, name: str) -> dict[str, Any]:
    return {"gtin": gtin, "name": name, "brand": "Acme", "category": "shoes"}


def test_full_then_delta_reaches_products_and_catalogue(central: Central, edge_db: Path) -> None:
    load(central, "catalogue", [shoe(G1, "Runner"), shoe(G2, "Boot")])
    load(central, "prices", [{"gtin": G1, "price_cents": 5000}, {"gtin": G2, "price_cents": 7000},
                             {"gtin": SEEDED, "price_cents": 8499}])
    changed: list[str] = []
    sync = client(edge_db, central, on_change=changed.append)
    try:
        assert sync.sync_once("catalogue") == 2 and sync.sync_once("prices") == 3
        assert products(edge_db) == {G1: ("Runner", "shoes", 5000), G2: ("Boot", "shoes", 7000),
                                     SEEDED: ("Layout shoe", None, 8499)}
        assert changed == ["catalogue", "prices"]
        # What enrichment reads: a Catalogue on the edge writer's own connection.
        db = connect(edge_db)
        cat = Catalogue(db)
        assert cat.product(G1)["price_cents"] == 5000

        v = load(central, "catalogue", [shoe(G1, "Runner 2"), shoe(G3, "Sandal")],
                 delete=[{"gtin": G2}])
        load(central, "prices", [{"gtin": G3, "price_cents": 3000}])
        assert sync.sync_once("catalogue") == 3  # a delta: only what changed
        assert sync.sync_once("prices") == 1
        assert sync.metrics()["feeds"]["catalogue"]["version"] == v
        assert products(edge_db) == {G1: ("Runner 2", "shoes", 5000),
                                     G3: ("Sandal", "shoes", 3000),
                                     SEEDED: ("Layout shoe", None, 8499)}
        cat.reload()
        assert cat.product(G2) is None and cat.product(G3)["name"] == "Sandal"
        assert sync.sync_once("catalogue") == 0  # nothing new
        db.conn.close()
    finally:
        sync.stop()


def test_a_feed_failing_midway_leaves_the_previous_copy(central: Central,
                                                        edge_db: Path) -> None:
    load(central, "catalogue", [shoe(G1, "Runner")])
    sync = client(edge_db, central)
    try:
        sync.sync_once("catalogue")
        before, version = products(edge_db), sync.metrics()["feeds"]["catalogue"]["version"]
        load(central, "catalogue", [shoe(G1, "Runner 2"), shoe(G2, "Boot"), shoe(G3, "Sandal")])
        # A row the edge cannot store, after two good ones: the apply fails half-way.
        central.db.run(lambda tx: tx.execute(
            "UPDATE catalogue_products SET name = NULL WHERE gtin = ?", (G3,)))
        with pytest.raises(sqlite3.IntegrityError):
            sync.sync_once("catalogue")
        assert products(edge_db) == before
        assert sync.metrics()["feeds"]["catalogue"]["version"] == version
        conn = sqlite3.connect(edge_db)
        assert conn.execute("SELECT count(*) FROM sync_catalogue").fetchone() == (1,)
        conn.close()
        # Fixed at central: the delta resumes from the last good version.
        load(central, "catalogue", [shoe(G3, "Sandal")])
        sync.sync_once("catalogue")
        assert {g: p[0] for g, p in products(edge_db).items()} == {
            G1: "Runner 2", G2: "Boot", G3: "Sandal", SEEDED: "Layout shoe"}
    finally:
        sync.stop()


def test_store_keeps_its_copy_while_central_is_down(central: Central, edge_db: Path) -> None:
    load(central, "catalogue", [shoe(G1, "Runner")])
    load(central, "prices", [{"gtin": G1, "price_cents": 5000}])
    clock = Clock()
    sync = client(edge_db, central, clock, cadences={"erasures": 0, "orders": 0},
                  backoff_base_s=2, backoff_cap_s=30)
    try:
        assert sorted(sync.tick()) == ["catalogue", "prices", "stock"]
        server = central.servers.pop()
        port = server.server.port
        server.stop()
        clock.now += 61
        assert sync.tick() == ["stock"]
        clock.now += 2 * DAY  # prices due, central still down: failures back off
        assert sorted(sync.tick()) == ["prices", "stock"]
        m = sync.metrics()
        assert m["feeds"]["prices"]["consecutive_failures"] == 1
        assert m["last_sync_age_s"]["prices"] == pytest.approx(2 * DAY + 61)
        assert "prices" not in sync.tick()  # backing off, not hammering
        assert products(edge_db)[G1] == ("Runner", "shoes", 5000)
        db = connect(edge_db)
        assert Catalogue(db).product(G1)["price_cents"] == 5000
        db.conn.close()

        central.servers.append(ServerThread(central.app, port=port).start())
        load(central, "prices", [{"gtin": G1, "price_cents": 4500}])
        clock.now += 31  # past the largest backoff
        assert sorted(sync.tick()) == ["prices", "stock"]
        assert sync.metrics()["feeds"]["prices"]["consecutive_failures"] == 0
        assert sync.metrics()["last_sync_age_s"]["prices"] == 0
        assert products(edge_db)[G1][2] == 4500
    finally:
        sync.stop()


def test_each_feed_on_its_own_cadence_across_restarts(central: Central, edge_db: Path) -> None:
    clock = Clock()
    cadences = {"catalogue": 3 * DAY, "prices": DAY, "stock": 60, "erasures": 60,
                "orders": 60}
    sync = client(edge_db, central, clock, cadences=cadences)
    try:
        assert sorted(sync.tick()) == ["catalogue", "erasures", "orders", "prices", "stock"]
        clock.now += 30
        assert sync.tick() == []
        clock.now += 31
        assert sorted(sync.tick()) == ["erasures", "orders", "stock"]
        clock.now = T0 + DAY + 1
        assert sorted(sync.tick()) == ["erasures", "orders", "prices", "stock"]
    finally:
        sync.stop()
    # A restarted edge does not pull the three-day catalogue again.
    clock.now = T0 + DAY + 100
    again = client(edge_db, central, clock, cadences=cadences)
    try:
        assert sorted(again.tick()) == ["erasures", "orders", "stock"]
        clock.now = T0 + 3 * DAY + 1
        assert "catalogue" in again.tick()
    finally:
        again.stop()


def test_rules_decide_the_price_customers_see(central: Central, edge_db: Path) -> None:
    load(central, "catalogue", [shoe(G1, "Runner")])
    load(central, "prices", [{"gtin": G1, "price_cents": 5000},
                             {"gtin": G1, "price_cents": 3900, "kind": "promo",
                              "valid_from": T0 + 100, "valid_to": T0 + 200}])
    clock = Clock()
    sync = client(edge_db, central, clock, cadences={"erasures": 0, "stock": 0, "orders": 0})
    try:
        sync.tick()
        assert products(edge_db)[G1][2] == 5000
        sync.set_markdown(G1, 4200, set_by="manager")  # lowest wins
        assert products(edge_db)[G1][2] == 4200
        clock.now = T0 + 150  # the promotion opens with no sync: repriced on the next tick
        sync.tick()
        assert products(edge_db)[G1][2] == 3900
        clock.now = T0 + 250
        sync.tick()
        assert products(edge_db)[G1][2] == 4200
        sync.set_markdown(G1, None)
        assert products(edge_db)[G1][2] == 5000
    finally:
        sync.stop()


def test_stock_view_prefers_the_fresher_store_count(central: Central, edge_db: Path) -> None:
    load(central, "stock", [
        {"location": STORE, "gtin": G1, "quantity": 12, "observed_at": T0 - 600},
        {"location": "store-b", "gtin": G1, "quantity": 4, "observed_at": T0 - 600},
        {"location": "web-warehouse", "gtin": G1, "quantity": 300, "observed_at": T0 - 600}])
    sync = client(edge_db, central)
    try:
        sync.sync_once("stock")
        view = sync.stock_view(G1)
        assert view["this_store"]["quantity"] == 12 and view["this_store"]["source"] == "central"
        assert view["other_stores"] == {"store-b": 4} and view["web_warehouse"] == 300
        sync.record_store_count(G1, 3, counted_by="staff-7", at=T0 - 60)
        assert sync.stock_view(G1)["this_store"] == {"quantity": 3, "source": "store_count",
                                                     "observed_at": T0 - 60}
        load(central, "stock", [{"location": STORE, "gtin": G1, "quantity": 20,
                                 "observed_at": T0 - 10}])
        sync.sync_once("stock")
        assert sync.stock_view(G1)["this_store"]["quantity"] == 20
    finally:
        sync.stop()
