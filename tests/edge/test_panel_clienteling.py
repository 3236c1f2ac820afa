"""Clienteling against a real central over HTTP: scan, consent, points, activity, suggestions."""
# ruff: noqa: F811  (pytest fixtures imported from panel_fixtures are parameters here)

from __future__ import annotations

import io
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.loyalty import issue_token
from edge.panel import create_app
from tests.central.conftest import Central, channel_event, interest, make_central

from .panel_fixtures import STAFF, _panel_db_template, csrf_token, login, panel_db  # noqa: F401

KEY = bytes(range(32))
SHOE, SOCKS, TENT = "09506000134352", "07040512001679", "07040512001907"


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    c = make_central({"sqlite_path": str(tmp_path / "central.db")})
    try:
        yield c
    finally:
        for s in c.servers:
            s.stop()
        c.db.close()


@pytest.fixture
def clerk(panel_db: Path, central: Central):
    conn = sqlite3.connect(panel_db, isolation_level=None)
    conn.executemany("INSERT OR REPLACE INTO products (gtin, name) VALUES (?, ?)",
                     [(SHOE, "Trail shoe"), (SOCKS, "Merino socks"), (TENT, "Fjord tent")])
    # Other shoppers looked at the shoe; two of them at the socks, one at the tent.
    rows = []
    for i, (session, gtin) in enumerate([("s1", SHOE), ("s1", SOCKS), ("s2", SHOE),
                                         ("s2", SOCKS), ("s3", SHOE), ("s3", TENT),
                                         ("s4", TENT)]):
        ev = {"event_id": f"cl-{i}", "gtin": gtin, "received_at": time.time()}
        rows.append((f"cl-{i}", "interest", session, json.dumps(ev), time.time()))
    # s4 looked at the shoe too and bought the tent: a purchase breaks the socks/tent tie.
    rows.append(("cl-8", "interest", "s4", json.dumps({"gtin": SHOE}), time.time()))
    rows.append(("o-9", "order", "s4", json.dumps({"order_id": "o-9", "lines": [
        {"gtin": TENT, "quantity": 1}]}), time.time()))
    conn.executemany("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at)"
                     " VALUES (?, ?, ?, ?, ?)", rows)
    app = create_app({"TESTING": True, "DB_PATH": str(panel_db), "SECRET_KEY": "t",
                      "CENTRAL_URL": central.url, "STORE_TOKEN": central.store_token,
                      "LOYALTY_KEYS": {"k1": KEY}})
    c = app.test_client()
    login(c, STAFF)
    c.token = csrf_token(c, "/clienteling/")  # type: ignore[attr-defined]
    return c


def _customer(central: Central, tracking: bool) -> None:
    """C1 identified in this store, has 120 points, and has (not) agreed to tracking."""
    status, body = central.api("PUT", "/api/v1/customers/C1/consents",
                               {"tracking": True, "marketing": True})
    assert status == 200, body
    status, body = central.post_events([interest("sess-c1", gtin=SHOE, customer="C1")])
    assert status == 200 and body["accepted"], body
    status, body = central.post_events(
        [channel_event("loyalty", "kiosk", customer_id="C1", points=120,
                       reference={"kind": "purchase", "id": "till-1:0001"})],
        token=central.admin)
    assert status == 200 and body["accepted"], body
    profile = central.profile("C1")
    assert profile["loyalty_points"] == 120 and profile["timeline"], profile
    if not tracking:
        status, body = central.api("PUT", "/api/v1/customers/C1/consents",
                                   {"tracking": False})
        assert status == 200, body


def test_with_consent_a_scan_shows_points_activity_interests_and_add_ons(clerk, central):
    _customer(central, tracking=True)
    token = issue_token(KEY, "C1", kind="app", now=time.time(), ttl_s=120)
    r = clerk.post("/clienteling/lookup", data={"csrf_token": clerk.token, "code": token})
    html = r.get_data(as_text=True)
    assert r.status_code == 200, html
    assert re.search(r'id="points">.*?<span class="value">120<', html, re.S)
    assert "Trail shoe" in html  # interest and activity, named from the local catalogue
    suggestions = re.search(r'id="suggestions".*?</table>', html, re.S).group(0)
    cells = re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td>"
                       r"<td class=\"num\">(\d+)</td>", suggestions)
    assert cells == [("Fjord tent", "2", "1"), ("Merino socks", "2", "0")]
    assert "Trail shoe" not in suggestions  # not what they already looked at
    assert "C1" not in r.request.url  # a POST: the id is in no URL


def test_without_consent_nothing_personal_is_shown(clerk, central):
    _customer(central, tracking=False)
    r = clerk.post("/clienteling/lookup", data={"csrf_token": clerk.token, "code": "C1"})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "no consent to personalised service" in html
    assert 'id="points"' not in html and "Trail shoe" not in html


def test_bad_codes_and_unknown_customers(clerk, central):
    forged = issue_token(bytes(32), "C1", kind="app", now=time.time(), ttl_s=120)
    r = clerk.post("/clienteling/lookup", data={"csrf_token": clerk.token, "code": forged})
    assert r.status_code == 400 and "not valid" in r.get_data(as_text=True)
    r = clerk.post("/clienteling/lookup", data={"csrf_token": clerk.token,
                                                "code": "<script>alert(1)</script>"})
    assert r.status_code == 400 and "<script>alert" not in r.get_data(as_text=True)
    r = clerk.post("/clienteling/lookup", data={"csrf_token": clerk.token, "code": "nobody"})
    assert r.status_code == 400 and "No profile to show" in r.get_data(as_text=True)


def test_central_down_is_said_plainly(clerk, central):
    for s in central.servers:
        s.stop()
    central.servers.clear()
    r = clerk.post("/clienteling/lookup", data={"csrf_token": clerk.token, "code": "C1"})
    assert r.status_code == 400 and "cannot be reached" in r.get_data(as_text=True)


def test_a_photo_of_the_loyalty_qr_taken_with_the_tablet(clerk, central):
    import segno

    _customer(central, tracking=True)
    token = issue_token(KEY, "C1", kind="app", now=time.time(), ttl_s=120)
    out = io.BytesIO()
    segno.make(token, error="m").save(out, kind="png", scale=6, border=4)
    r = clerk.post("/clienteling/lookup", content_type="multipart/form-data",
                   data={"csrf_token": clerk.token, "photo": (io.BytesIO(out.getvalue()),
                                                              "qr.png")})
    assert r.status_code == 200 and 'id="points"' in r.get_data(as_text=True)
    r = clerk.post("/clienteling/lookup", content_type="multipart/form-data",
                   data={"csrf_token": clerk.token, "photo": (io.BytesIO(b"<svg/>"), "x.png")})
    assert r.status_code == 400 and "not a PNG or JPEG" in r.get_data(as_text=True)


def test_a_full_profile_also_needs_the_marketing_consent(panel_db):
    from edge.panel.clienteling import view_of

    app = create_app({"TESTING": True, "DB_PATH": str(panel_db), "SECRET_KEY": "t"})
    with app.test_request_context():
        full = {"consents": {"marketing": {"granted": False}}, "loyalty_points": 5}
        assert view_of(full) == {"consent": False}
        full["consents"]["marketing"]["granted"] = True
        assert view_of(full)["points"] == 5


def test_with_consent_staff_see_the_wish_list_kept_at_the_kiosks(clerk, central, panel_db):
    _customer(central, tracking=True)
    conn = sqlite3.connect(panel_db, isolation_level=None)
    conn.executemany("INSERT INTO kiosk_wishlist (customer_id, gtin, added_at) VALUES (?, ?, ?)",
                     [("C1", SOCKS, 1.0), ("C2", TENT, 2.0)])  # C2's is not C1's
    r = clerk.post("/clienteling/lookup", data={"csrf_token": clerk.token, "code": "C1"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200, html
    wishlist = re.search(r'id="wishlist">(.*?)</ul>', html, re.S).group(1)
    assert f'data-gtin="{SOCKS}">Merino socks<' in wishlist and "Fjord tent" not in wishlist
    # What they already wish for is not suggested again; the tent still is.
    suggestions = re.search(r'id="suggestions".*?</table>', html, re.S).group(0)
    assert "Merino socks" not in suggestions and "Fjord tent" in suggestions
    # Withdrawn at a kiosk: that wins over central's answer, the wish-list is not shown.
    conn.execute("INSERT INTO customer_cache (customer_id, consent_local, fetched_at)"
                 " VALUES ('C1', 0, 0)")
    html = clerk.post("/clienteling/lookup", data={"csrf_token": clerk.token, "code": "C1"}
                      ).get_data(as_text=True)
    assert 'id="wishlist-empty"' in html and "Merino socks" not in html.split(
        'id="suggestions"')[0]
    conn.close()


def test_without_consent_the_wish_list_is_not_shown_either(clerk, central, panel_db):
    _customer(central, tracking=False)
    conn = sqlite3.connect(panel_db, isolation_level=None)
    conn.execute("INSERT INTO kiosk_wishlist VALUES ('C1', ?, 1.0)", (SOCKS,))
    conn.close()
    r = clerk.post("/clienteling/lookup", data={"csrf_token": clerk.token, "code": "C1"})
    assert r.status_code == 400 and "Merino socks" not in r.get_data(as_text=True)
