"""docs/permissions.md's central matrix is what the service does, for every route.

The route list comes from the running app's URL map, so a new endpoint that
is not in the documented matrix fails here; every cell is then checked by a
real HTTP call with a credential of that kind.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from central.credentials import issue
from central.profiles import SUMMARY_FIELDS
from tests.central.conftest import STORE, Central, grant, presence
from tests.central.digest import digest
from tests.central.http import call

DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
KINDS = ("none", "store", "channel", "admin")
ALLOWED = {"yes", "own", "own channel", "summary"}


def matrix(name: str) -> dict[str, dict[str, str]]:
    """``{"GET /path": {caller: cell, ..., "scope": text}}`` from the doc's table."""
    text = DOC.read_text("utf-8")
    body = text.split(f"<!-- {name} -->")[1].split(f"<!-- /{name} -->")[0]
    rows = [line for line in body.strip().splitlines()[2:] if line.startswith("|")]
    out = {}
    for line in rows:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        route = cells[0].strip("`")
        out[route] = dict(zip(KINDS, cells[1:1 + len(KINDS)], strict=True))
        out[route]["scope"] = cells[-1]
    return out


_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def plain(route: str) -> str:
    """``/x/<int:qid>`` -> ``/x/<qid>``: the doc may name converters, the map always does."""
    return _CONVERTER.sub(r"<\1>", route)


def routes(app: Any) -> set[str]:
    return {f"{method} {plain(rule.rule)}" for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_route_is_in_the_matrix(central: Central) -> None:
    documented = {plain(r) for r in matrix("central-matrix")}
    assert routes(central.app) == documented


def test_summary_fields_are_the_documented_ones() -> None:
    scope = matrix("central-matrix")["GET /api/v1/customers/<customer_id>"]["scope"]
    listed = scope.split("store summary:")[1].split(";")[0]
    assert tuple(re.findall(r"`([a-z_]+)`", listed)) == SUMMARY_FIELDS


def _request(route: str, kind: str, store: str, n: int) -> tuple[str, str, Any]:
    method, path = route.split(" ", 1)
    values = {"customer_id": "c-perm", "store_id": store, "feed": "catalogue",
              "kind": "store", "name": f"perm-{n}", "order_id": "perm-order",
              "media_id": "0" * 64}
    path = _CONVERTER.sub(lambda m: values[m.group(1)], path)
    channel = "kiosk" if kind == "store" else "web"
    bodies = {
        "POST /api/v1/events": {"events": [presence("c-perm", f"s-{n}")] if kind == "store"
                                else []},
        "PUT /api/v1/customers/<customer_id>/consents": {"tracking": True},
        "POST /api/v1/orders": {
            "order_id": f"perm-{n}", "channel": channel, "customer_id": "c-perm",
            "created_at": time.time(),
            "fulfilment": {"type": "click_and_collect", "store_id": STORE},
            "lines": [{"gtin": "00000000000017", "quantity": 1}]},
        "POST /api/v1/orders/<order_id>/status": {"status": "cancelled",
                                                  "change_id": f"perm-{n}-{kind}"},
        "PUT /api/v1/admin/feeds/<feed>": {"items": []},
        "POST /api/v1/admin/credentials": {"kind": "store", "name": f"perm-{n}"},
    }
    return method, path, bodies.get(route)


def test_every_cell_of_the_matrix_holds(central: Central) -> None:
    tokens = {"none": None, "store": central.store_token,
              "channel": issue(central.db, "channel", "web"), "admin": central.admin}
    grant(central, "c-perm", at=time.time() - 1000)
    central.post_events([presence("c-perm", "s-perm")])  # visible to store-a's summary
    checked = 0
    for n, (route, cells) in enumerate(sorted(matrix("central-matrix").items())):
        if route.startswith("DELETE /api/v1/customers/"):
            continue  # last, below: it erases the customer the other rows read
        for kind in KINDS:
            checked += _check(central, route, kind, cells[kind], tokens[kind], n)
    route = "DELETE /api/v1/customers/<customer_id>"
    for kind in KINDS:
        checked += _check(central, route, kind, matrix("central-matrix")[route][kind],
                          tokens[kind], 99)
    assert checked >= len(matrix("central-matrix")) * len(KINDS)


def _check(central: Central, route: str, kind: str, cell: str, token: str | None,
           n: int) -> int:
    method, path, body = _request(route, kind, STORE, n)
    headers_token = token if kind != "none" else None
    before = digest(central.db) if cell == "no" else ""
    status, resp = call(method, central.url + path, headers_token, body)
    where = f"{route} as {kind} ({cell}): {status} {resp}"
    if cell == "no":
        assert status == (401 if kind == "none" else 403), where
        assert digest(central.db) == before, f"{where}: refused, yet a row changed"
        return 1
    assert cell in ALLOWED, where
    assert status not in (401, 403) and status < 500, where
    if cell == "summary":
        assert status == 200 and tuple(resp) == SUMMARY_FIELDS, where
    if cell == "own" and "<store_id>" in route:
        method, path, body = _request(route, kind, "store-b", n + 1000)
        before = digest(central.db)
        status, resp = call(method, central.url + path, headers_token, body)
        assert status == 403, f"{route} as {kind} for another store: {status} {resp}"
        assert digest(central.db) == before, f"{route} as {kind} for another store changed a row"
    return 1


def test_every_other_method_is_refused_and_changes_nothing(central: Central) -> None:
    """A method a route does not declare is a 405 for every caller, never a way in."""
    tokens = {"none": None, "store": central.store_token,
              "channel": issue(central.db, "channel", "web"), "admin": central.admin}
    served = routes(central.app)
    checked = 0
    for n, route in enumerate(sorted({r.split(" ", 1)[1] for r in served})):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if f"{method} {route}" in served:
                continue
            _, path, _ = _request(f"{method} {route}", "admin", STORE, n)
            for kind, token in tokens.items():
                before = digest(central.db)
                status, resp = call(method, central.url + path, token, {"events": []})
                assert status == 405, f"{method} {route} as {kind}: {status} {resp}"
                assert digest(central.db) == before, f"{method} {route} as {kind} changed a row"
                checked += 1
    assert checked > 0
