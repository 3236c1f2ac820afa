"""No request ends in a 500 (issue 11, section 4): hypothesis against every central route.

Routes come from the running app's URL map, so a new endpoint is covered the
day it is added. Bodies are arbitrary JSON (deep, huge numbers, wrong types),
``NaN``, truncated or binary text; path and query values are arbitrary text and
huge numbers; callers are every credential kind. Each answer must be a 4xx
(or a 2xx) with a JSON reason, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import http.client
import json
import re
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.credentials import issue
from tests.central.conftest import Central

_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")

numbers = st.one_of(st.integers(min_value=-(10**30), max_value=10**30),
                    st.floats(allow_nan=False, allow_infinity=False))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=25)
event_like = st.fixed_dictionaries({
    "event_id": st.text(max_size=10), "type": st.sampled_from(
        ["interest", "presence", "security", "identify", "profile", "loyalty", "consent", "x"]),
    "channel": st.sampled_from(["store", "kiosk", "web", "app", "crm", "nope"]),
}, optional={"occurred_at": numbers, "received_at": numbers, "customer_id": scalars,
             "store_id": st.sampled_from(["store-a", "store-b", ""]), "points": numbers,
             "fields": json_values, "consents": json_values, "reference": json_values,
             "session_id": scalars, "alias": json_values, "product": json_values})


@st.composite
def bodies(draw: st.DrawFn) -> bytes | None:
    kind = draw(st.sampled_from(["none", "json", "events", "deep", "constant", "bytes"]))
    if kind == "none":
        return None
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "events":
        return json.dumps({"events": draw(st.lists(event_like, max_size=4))}).encode()
    if kind == "deep":
        depth = draw(st.integers(min_value=30, max_value=200_000))
        return (draw(st.sampled_from(["[", '{"a":'])) * depth).encode()
    if kind == "constant":
        constant = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]))
        return f'{{"events": [], "at": {constant}, "tracking": true}}'.encode()
    return draw(st.binary(max_size=200))


path_values = st.one_of(st.text(min_size=1, max_size=80),
                        st.sampled_from(["store-a", "store-b", "catalogue", "prices", "stock",
                                         "store", "channel", "c1", "9" * 40, "..", "%00"]))
query_values = st.one_of(st.text(max_size=30), st.integers().map(str),
                         st.sampled_from(["9" * 25, "-" + "9" * 25, "1e9", " 5", "0x10", ""]))


def _send(central: Central, method: str, path: str, token: str | None, body: bytes | None
          ) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(central.url.split("//")[1], timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


@pytest.fixture
def callers(central: Central) -> dict[str, str | None]:
    return {"none": None, "store": central.store_token,
            "channel": issue(central.db, "channel", "web"), "admin": central.admin,
            "bogus": "vtc_" + "x" * 43}


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_route_answers_5xx(central: Central, callers: dict[str, str | None],
                              data: st.DataObject) -> None:
    rules = sorted((r.rule, m) for r in central.app.url_map.iter_rules()
                   for m in r.methods - {"HEAD", "OPTIONS"})
    rule, method = data.draw(st.sampled_from(rules), label="route")
    path = _PARAM.sub(lambda m: quote(data.draw(path_values, label=m.group(1)), safe=""), rule)
    query = data.draw(st.dictionaries(st.sampled_from(["since", "limit", "x"]), query_values,
                                      max_size=2), label="query")
    if query:
        path += "?" + urlencode(query)
    token = callers[data.draw(st.sampled_from(sorted(callers)), label="caller")]
    body = data.draw(bodies(), label="body")
    status, answer = _send(central, method, path, token, body)
    assert status < 500, (method, path, status, answer[:300])
    if status >= 400:
        assert json.loads(answer)["message"], answer[:300]  # a reason, as JSON


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/api/v1/events", b"[" * 100_000),
    ("POST", "/api/v1/events", b'{"events": [' + b"{\"a\":" * 50_000 + b"}"),
    ("GET", "/api/v1/stores/store-a/erasures?since=" + "9" * 40, None),
    ("GET", "/api/v1/stores/store-a/orders?since=99999999999999999999", None),
    ("GET", "/api/v1/stores/store-a/feeds/stock?since=99999999999999999999", None),
    ("POST", "/api/v1/admin/credentials", b'{"kind": "store", "name": "bad name!"}'),
    ("POST", "/api/v1/admin/credentials", b'{"kind": "robot", "name": "x"}'),
    ("DELETE", "/api/v1/admin/credentials/robot/x", None),
    ("DELETE", "/api/v1/admin/credentials/store/%20bad", None),
    ("PUT", "/api/v1/customers/c1/consents", b'{"tracking": true, "at": 1e308}'),
])
def test_known_bad_requests_are_4xx_with_a_reason(central: Central, method: str, path: str,
                                                  body: bytes | None) -> None:
    for token in (central.admin, central.store_token):
        status, answer = _send(central, method, path, token, body)
        assert 400 <= status < 500, (status, answer[:300])
        assert json.loads(answer)["message"]


def test_deeply_nested_json_is_refused_with_its_reason(central: Central) -> None:
    status, answer = _send(central, "POST", "/api/v1/events", central.store_token,
                           b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and "nested deeper than" in json.loads(answer)["message"]


def test_huge_cursor_is_clamped_not_overflowed(central: Central) -> None:
    status, answer = _send(central, "GET", "/api/v1/stores/store-a/erasures?since=" + "9" * 19,
                           central.store_token, None)
    assert status == 200 and json.loads(answer)["erasures"] == []
    status, answer = _send(central, "GET", "/api/v1/stores/store-a/erasures?since=" + "9" * 25,
                           central.store_token, None)
    assert status == 400 and "at most 19 digits" in json.loads(answer)["message"]

