"""Property tests: the panel's parsers, and no input making any route fail with a 5xx."""
# ruff: noqa: F811  (pytest fixtures imported from panel_fixtures are parameters here)

from __future__ import annotations

import csv
import io
import re
import time
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.panel.analytics import to_csv
from edge.panel.clienteling import LookupError_, customer_id_from
from edge.panel.prices import parse_price, parse_quantity

from .panel_fixtures import (  # noqa: F401
    MANAGER,
    _panel_db_template,
    app,
    csrf_token,
    login,
    panel_db,  # noqa: F401
)

ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=80)


@given(ANY_TEXT)
def test_parse_price_is_none_or_cents(text):
    cents = parse_price(text)
    assert cents is None or (isinstance(cents, int) and 0 <= cents < 10**8)


@given(st.integers(0, 999_999), st.integers(0, 99))
def test_parse_price_round_trips(units, cents):
    assert parse_price(f"{units}.{cents:02d}") == units * 100 + cents
    assert parse_price(f"{units},{cents:02d}") == units * 100 + cents


@given(ANY_TEXT)
def test_parse_quantity_is_none_or_a_bounded_count(text):
    n = parse_quantity(text)
    assert n is None or 0 <= n <= 1_000_000


@given(ANY_TEXT)
def test_customer_codes_give_an_id_or_a_clear_refusal(text):
    from flask import Flask

    with Flask(__name__).test_request_context():
        try:
            cid = customer_id_from(text, {"k1": bytes(32)}, time.time())
        except LookupError_ as exc:
            assert str(exc)
        else:
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cid)


@given(st.lists(st.lists(ANY_TEXT, min_size=2, max_size=2), max_size=5))
def test_csv_round_trips_and_is_formula_free(rows):
    text = to_csv(["a", "b"], rows)
    back = list(csv.reader(io.StringIO(text)))
    assert back[0] == ["a", "b"] and len(back) == len(rows) + 1
    for row in back[1:]:
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@")


FORM = st.dictionaries(st.sampled_from(["username", "role", "device_id", "kind", "zone", "shelf",
                                        "gtin", "price", "remove", "quantity", "q", "code",
                                        "enable", "lang", "back", "next"]), ANY_TEXT, max_size=6)
POSTS = ["/users/add", "/users/clerk/reset", "/users/x%00y/disable", "/devices/add",
         "/devices/nfc-01/revoke", "/prices/markdown", "/stock/count", "/clienteling/lookup",
         "/quarantine/1/review", "/lang"]


def test_no_form_and_no_query_makes_a_route_fail(app):
    c = app.test_client()
    login(c, MANAGER)  # once: a scrypt check per example would dominate the run
    token = csrf_token(c, "/")

    @settings(max_examples=150, deadline=None)
    @given(st.sampled_from(POSTS), FORM, st.sampled_from(["/", "/prices/?q=", "/stock/?q="]),
           ANY_TEXT)
    def check(path, form, page, query):
        r = c.post(path, data={**form, "csrf_token": token})
        assert r.status_code < 500, (path, form, r.status_code)
        if path == "/users/add" and r.status_code == 201:
            return
        # A browser percent-encodes what it sends; an unencoded "/\x80" would be read as a host.
        r = c.get(page + quote(query, safe=""))
        assert r.status_code < 500, (page, query)

    check()
