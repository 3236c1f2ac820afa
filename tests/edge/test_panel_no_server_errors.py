"""No panel request ends in a 500 (issue 11, section 4): hypothesis against every route.

Routes come from the running panel's URL map (new pages are covered the day
they are added), served over real HTTP; callers are anonymous, staff and a
manager, with or without a valid CSRF token; path values, query strings and
form bodies are arbitrary, including huge numbers, control characters, CR/LF
and binary junk.
"""
# ruff: noqa: F811  (pytest fixtures imported from panel_fixtures are parameters here)

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .panel_fixtures import MANAGER, STAFF, _panel_db_template, panel_db  # noqa: F401
from .panel_http import Browser, Panel

_PARAM = re.compile(r"<(?:([a-z]+)(?:\([^)]*\))?:)?([a-z_]+)>")

texts = st.one_of(st.text(max_size=60), st.sampled_from([
    "9" * 30, "-1", "0", "1", "/%09/evil.example/", "//evil.example", "\r\nX: y", "\x00",
    "../../etc/passwd", "%", "reviewed", "unreviewed", "not_json"]))
ints = st.one_of(st.integers(min_value=0, max_value=10**30), st.sampled_from([0, 1, 2**63]))


@pytest.fixture
def browsers(panel_db: Path) -> Iterator[dict[str, Browser]]:
    panel = Panel(panel_db, PANEL_THROTTLE_LIMIT=10**6)
    out = {"anonymous": Browser(panel), "staff": Browser(panel), "manager": Browser(panel)}
    assert out["staff"].login(STAFF)[0] == 302
    assert out["manager"].login(MANAGER)[0] == 302
    yield out
    panel.stop()


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_panel_route_answers_5xx(browsers: dict[str, Browser], data: st.DataObject) -> None:
    app = browsers["manager"].panel.app
    rules = sorted((r.rule, m) for r in app.url_map.iter_rules()
                   for m in r.methods - {"HEAD", "OPTIONS"})
    rule, method = data.draw(st.sampled_from(rules), label="route")

    def value(m: re.Match[str]) -> str:
        raw = data.draw(ints if m.group(1) == "int" else texts, label=m.group(2))
        return quote(str(raw), safe="")

    path = _PARAM.sub(value, rule)
    query = data.draw(st.dictionaries(st.sampled_from(["next", "page", "n", "reason", "status",
                                                       "x"]), texts, max_size=3),
                      label="query")
    if query:
        path += "?" + urlencode(query)
    who = data.draw(st.sampled_from(sorted(browsers)), label="caller")
    browser = browsers[who]
    form = None
    if method == "POST":
        form = data.draw(st.dictionaries(st.sampled_from(["username", "password", "next",
                                                          "csrf_token", "x"]), texts,
                                         max_size=4), label="form")
        if data.draw(st.booleans(), label="valid csrf"):
            form["csrf_token"] = browser.csrf("/auth/login")
    status, _, text = browser.request(method, path, form)
    assert status < 500, (who, method, path, form, status, text[:300])
    if who != "anonymous" and method == "POST" and rule == "/auth/logout" and status == 302:
        assert browser.login(MANAGER if who == "manager" else STAFF)[0] == 302


@pytest.mark.parametrize("path", ["/quarantine/99999999999999999999999",
                                  "/quarantine/9223372036854775808",
                                  "/events/?n=99999999999999999999999",
                                  "/quarantine/?page=99999999999999999999999",
                                  "/auth/login?next=%0d%0aSet-Cookie:%20x=1"])
def test_huge_numbers_and_crlf_are_4xx_or_pages(browsers: dict[str, Browser],
                                                path: str) -> None:
    status, headers, _ = browsers["manager"].request("GET", path)
    assert status in (200, 404), status
    assert "x=1" not in (headers.get("Set-Cookie") or "")
