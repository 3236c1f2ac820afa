"""Central feeds to the edges: full and delta, paging, scoping, admin loads (SQLite and PG)."""

from __future__ import annotations

import json
from typing import Any

from central.credentials import issue
from tests.central.conftest import STORE, Central

G1, G2, G3 = "00000000000017", "00000000000024", "00000000000031"


def load(central: Central, feed: str, items: list[dict[str, Any]],
         delete: list[dict[str, Any]] | None = None) -> int:
    body: dict[str, Any] = {"items": items}
    if delete is not None:
        body["delete"] = delete
    status, resp = central.api("PUT", f"/api/v1/admin/feeds/{feed}", body)
    assert status == 200, resp
    return resp["version"]


def read(central: Central, feed: str, since: int = 0, limit: int | None = None,
         store: str = STORE) -> dict[str, Any]:
    query = f"?since={since}" + (f"&limit={limit}" if limit else "")
    status, body = central.api("GET", f"/api/v1/stores/{store}/feeds/{feed}{query}",
                               token=central.store_token)
    assert status == 200, body
    return body


def product(gtin: str, name: str) -> dict[str, Any]:
    return {"gtin": gtin, "name": name, "brand": "Acme", "category": "shoes"}


def test_catalogue_full_then_delta_with_tombstones(central: Central) -> None:
    v1 = load(central, "catalogue", [product(G1, "Shoe"), product(G2, "Boot")])
    full = read(central, "catalogue")
    assert full["full"] is True and full["version"] == v1 and full["more"] is False
    assert {i["gtin"]: i["name"] for i in full["items"]} == {G1: "Shoe", G2: "Boot"}
    assert read(central, "catalogue", since=v1)["items"] == []

    v2 = load(central, "catalogue", [product(G3, "Sandal"), product(G1, "Shoe v2")],
              delete=[{"gtin": G2}])
    assert v2 > v1
    delta = read(central, "catalogue", since=v1)
    assert delta["full"] is False and delta["version"] == v2
    changes = {i["gtin"]: (i["name"], i["deleted"]) for i in delta["items"]}
    assert changes == {G1: ("Shoe v2", False), G3: ("Sandal", False), G2: (None, True)}
    # The full feed leaves tombstones out; a cursor from the future restarts in full.
    assert {i["gtin"] for i in read(central, "catalogue")["items"]} == {G1, G3}
    restart = read(central, "catalogue", since=v2 + 100)
    assert restart["full"] is True and {i["gtin"] for i in restart["items"]} == {G1, G3}


def test_pages_resume_by_version(central: Central) -> None:
    gtins = [f"{n:014d}" for n in range(1, 8)]
    load(central, "catalogue", [product(g, f"p{g}") for g in gtins])
    seen: list[str] = []
    since, pages = 0, 0
    while True:
        page = read(central, "catalogue", since=since, limit=3)
        seen += [i["gtin"] for i in page["items"]]
        since, pages = page["version"], pages + 1
        if not page["more"]:
            break
    assert sorted(seen) == gtins and pages == 3


def test_prices_are_scoped_to_the_store(central: Central) -> None:
    load(central, "prices", [
        {"gtin": G1, "price_cents": 1000},
        {"gtin": G1, "price_cents": 900, "store_id": STORE, "kind": "promo",
         "valid_from": 100, "valid_to": 200, "label": "-10%"},
        {"gtin": G1, "price_cents": 800, "store_id": "store-b"},
    ])
    items = read(central, "prices")["items"]
    assert {(i["store_id"], i["kind"], i["price_cents"]) for i in items} == {
        ("*", "regular", 1000), (STORE, "promo", 900)}
    promo = next(i for i in items if i["kind"] == "promo")
    assert (promo["valid_from"], promo["valid_to"], promo["label"]) == (100, 200, "-10%")


def test_stock_keeps_the_newest_observation(central: Central) -> None:
    load(central, "stock", [{"location": STORE, "gtin": G1, "quantity": 5, "observed_at": 200},
                            {"location": "web-warehouse", "gtin": G1, "quantity": 40,
                             "observed_at": 200}])
    load(central, "stock", [{"location": STORE, "gtin": G1, "quantity": 99, "observed_at": 100}])
    items = {i["location"]: i["quantity"] for i in read(central, "stock")["items"]}
    assert items == {STORE: 5, "web-warehouse": 40}


def test_loads_are_admin_only_validated_and_all_or_nothing(central: Central) -> None:
    body = {"items": [product(G1, "Shoe")]}
    assert central.api("PUT", "/api/v1/admin/feeds/catalogue", body,
                       token=central.store_token)[0] == 403
    bad = {"items": [product(G1, "Shoe"), {"gtin": "123", "name": "x"}]}
    status, resp = central.api("PUT", "/api/v1/admin/feeds/catalogue", bad)
    assert status == 400 and "catalogue" in resp["message"]
    assert read(central, "catalogue")["items"] == []
    assert central.api("PUT", "/api/v1/admin/feeds/prices",
                       {"items": [{"gtin": G1, "price_cents": 5, "valid_from": 10,
                                   "valid_to": 5}]})[0] == 400
    assert central.api("GET", "/api/v1/stores/store-b/feeds/catalogue",
                       token=central.store_token)[0] == 403
    assert central.api("GET", f"/api/v1/stores/{STORE}/feeds/nope",
                       token=central.store_token)[0] == 404
    web = issue(central.db, "channel", "web")
    assert central.api("GET", f"/api/v1/stores/{STORE}/feeds/catalogue", token=web)[0] == 403


def test_cli_loads_a_file(central: Central, tmp_path, monkeypatch, capsys) -> None:
    from central.feeds.__main__ import main

    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps({"items": [product(G1, "From ERP")]}))
    if "database_url" in central.db_config:
        args = ["--database-url", central.db_config["database_url"]]
    else:
        monkeypatch.setenv("VITRINE_CENTRAL_SQLITE_PATH", central.db_config["sqlite_path"])
        args = []
    assert main(["load", "catalogue", str(path), *args]) == 0
    assert json.loads(capsys.readouterr().out)["feed"] == "catalogue"
    assert [i["name"] for i in read(central, "catalogue")["items"]] == ["From ERP"]
    path.write_text(json.dumps({"items": [{"gtin": "1", "name": "bad"}]}))
    assert main(["load", "catalogue", str(path), *args]) == 1


def test_concurrent_loads_never_hide_a_row_from_a_delta_reader(central: Central) -> None:
    """A reader pulling deltas during concurrent loads sees every row exactly by its cursor."""
    from concurrent.futures import ThreadPoolExecutor

    def writer(w: int) -> None:
        for n in range(8):
            load(central, "catalogue", [product(f"{w}{n}{k:012d}", "p") for k in range(5)])

    seen: set[str] = set()
    since = 0
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer, w) for w in range(1, 5)]
        while not all(f.done() for f in futures):
            page = read(central, "catalogue", since=since)
            seen |= {i["gtin"] for i in page["items"]}
            since = page["version"]
        for f in futures:
            f.result()
    seen |= {i["gtin"] for i in read(central, "catalogue", since=since)["items"]}
    assert len(seen) == 4 * 8 * 5
