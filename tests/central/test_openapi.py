"""Central's OpenAPI document: valid, served, exactly the app's routes, examples accepted."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import fastjsonschema
import pytest
from openapi_spec_validator import validate

from central import create_app
from central.openapi import EXAMPLE_CHANGE, EXAMPLE_ORDER, document
from tests.central.conftest import STORE, Central

_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


def app_routes(app) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every route the app serves, Flask converters translated."""
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        out |= {(path, m) for m in rule.methods & _METHODS}
    return out


def documented(doc) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}


def test_document_is_valid_openapi_and_matches_every_route(tmp_path) -> None:
    doc = document()
    validate(doc)  # OpenAPI 3.1 (raises with the reason)
    app = create_app({"sqlite_path": str(tmp_path / "c.db")})
    try:
        routes = app_routes(app)
        assert ("/api/v1/orders", "POST") in routes  # the translation works
        assert documented(doc) == routes, (
            f"undocumented routes: {sorted(routes - documented(doc))}; "
            f"documented but not served: {sorted(documented(doc) - routes)}")
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
                assert names == set(re.findall(r"{(\w+)}", path)), (method, path)
                assert op["responses"] and op["summary"]
    finally:
        app.extensions["central_db"].close()


def test_central_serves_it_and_its_order_example_is_accepted(central: Central) -> None:
    with urllib.request.urlopen(central.url + "/api/v1/openapi.json", timeout=10) as resp:
        assert resp.status == 200
        served = resp.read()
    doc = json.loads(served)
    assert doc == json.loads(json.dumps(document()))
    # The documented order format is the one central takes: the example passes the
    # document's own schema and gets a 201 from the real server.
    order_schema = doc["components"]["schemas"]["Order"]
    order = {**EXAMPLE_ORDER, "order_id": f"doc-example-{time.time_ns()}",
             "fulfilment": {"type": "click_and_collect", "store_id": STORE}}
    fastjsonschema.compile(order_schema)(order)
    status, body = central.api("POST", "/api/v1/orders", order, token=central.store_token)
    assert status == 201, body
    # ...and so is its status change example, on that order.
    change_schema = doc["components"]["schemas"]["StatusChange"]
    fastjsonschema.compile(change_schema)(EXAMPLE_CHANGE)
    status, body = central.api("POST", f"/api/v1/orders/{order['order_id']}/status",
                               EXAMPLE_CHANGE, token=central.store_token)
    assert status == 201 and body["result"] == "changed", body
    with pytest.raises(fastjsonschema.JsonSchemaException):
        fastjsonschema.compile(order_schema)({**order, "lines": []})
    status, _ = central.api("POST", "/api/v1/orders", {**order, "lines": []},
                            token=central.store_token)
    assert status == 400
