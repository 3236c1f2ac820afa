"""Consent and privacy integrity (issue 11, section 2), against the real service.

NaN and Infinity never get in, and what an older version stored does not break
withdrawal or export; consent cannot be dated ahead; a withdrawal always wins;
erasure and export work for a customer with any number of sessions.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from central.credentials import issue
from tests.central.conftest import STORE, Central, channel_event, grant, interest, presence

DAY = 86_400.0


def _strict(raw: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in a response")

    return json.loads(raw, parse_constant=refuse)


def raw_call(central: Central, method: str, path: str, data: bytes, token: str | None = None
             ) -> tuple[int, Any]:
    req = urllib.request.Request(central.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {token or central.admin}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, _strict(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _strict(exc.read())


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_on_every_json_route(central: Central,
                                                          constant: str) -> None:
    app = issue(central.db, "channel", "app")
    ev = json.dumps({"events": [presence("c1", "s1")]}).replace('"device_ts": ',
                                                                f'"device_ts": {constant}, "x": ')
    order = {"order_id": "o1", "channel": "app", "created_at": "__C__",
             "fulfilment": {"type": "click_and_collect", "store_id": STORE},
             "lines": [{"gtin": "00000000000017", "quantity": 1}]}
    stock = {"items": [{"location": STORE, "gtin": "00000000000017", "quantity": 1,
                        "observed_at": "__C__"}]}

    def with_constant(doc: Any) -> bytes:
        return json.dumps(doc).replace('"__C__"', constant).encode()

    bodies = [
        ("POST", "/api/v1/events", ev.encode(), central.store_token),
        ("PUT", "/api/v1/customers/c1/consents", with_constant({"tracking": True,
                                                                "at": "__C__"}), app),
        ("POST", "/api/v1/orders", with_constant(order), app),
        ("PUT", "/api/v1/admin/feeds/stock", with_constant(stock), None),
        ("POST", "/api/v1/admin/credentials",
         with_constant({"kind": "store", "name": "s", "x": "__C__"}), None),
    ]
    for method, path, data, token in bodies:
        status, body = raw_call(central, method, path, data, token)
        assert status == 400, (path, body)
        assert "not valid JSON" in body["message"], body
    assert central.count("SELECT COUNT(*) AS n FROM events") == 0
    assert central.count("SELECT COUNT(*) AS n FROM consents") == 0
    assert central.count("SELECT COUNT(*) AS n FROM orders") == 0


def test_huge_numbers_are_refused_with_a_reason(central: Central) -> None:
    ev = presence("c1", "s1")
    ev["device_ts"] = 10**30
    status, body = central.post_events([ev])
    assert status == 400 and "events[0].device_ts" in body["message"], body


def _legacy_nan_event(central: Central, customer: str, session: str) -> None:
    """A row as an older central stored it: Python's json accepted NaN in a payload."""
    payload = ('{"event_id":"legacy-1","type":"interest","store_id":"store-a","gtin":'
               f'"00000000000017","customer_id":"{customer}","session_id":"{session}",'
               '"received_at":1700000000,"device_ts":NaN,"product":{"price":Infinity}}')
    central.db.run(lambda tx: tx.execute(
        "INSERT INTO events (event_id, kind, channel, source, store_id, customer_id, "
        "session_id, gtin, occurred_at, ingested_at, payload) VALUES "
        "('legacy-1', 'interest', 'store', 'store:store-a', 'store-a', ?, ?, "
        "'00000000000017', ?, ?, ?)", (customer, session, time.time() - 100, time.time(),
                                       payload)))


def test_stored_nan_breaks_neither_export_nor_withdrawal(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    grant(central, "c1", at=time.time() - 1000)
    central.post_events([presence("c1", "s1", at=time.time() - 200)])
    _legacy_nan_event(central, "c1", "s1")
    req = urllib.request.Request(central.url + "/api/v1/customers/c1/export",
                                 headers={"Authorization": f"Bearer {app}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        export = _strict(resp.read())  # strict JSON, whatever is stored
    legacy = next(e for e in export["events"] if e["event_id"] == "legacy-1")
    assert legacy["payload"]["device_ts"] is None
    assert legacy["payload"]["product"] == {"price": None}
    status, body = raw_call(central, "PUT", "/api/v1/customers/c1/consents",
                            b'{"tracking": false}', app)
    assert status == 200 and body["applied"] == {"tracking": True}, body
    assert central.count("SELECT COUNT(*) AS n FROM events WHERE customer_id IS NOT NULL "
                         "OR session_id IS NOT NULL") == 0
    row = central.db.run(lambda tx: tx.one(
        "SELECT payload FROM events WHERE event_id = 'legacy-1'"), write=False)
    stripped = _strict(row["payload"])
    assert "customer_id" not in stripped and "session_id" not in stripped
    assert stripped["device_ts"] is None and stripped["gtin"] == "00000000000017"


def test_consent_dated_ahead_is_refused(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    ahead = time.time() + DAY
    _, body = central.post_events([channel_event("consent", "kiosk", at=ahead,
                                                 customer_id="c1",
                                                 consents={"tracking": True})])
    assert body["accepted"] == [] and "in the future" in body["rejected"][0]["reason"]
    status, body = central.api("PUT", "/api/v1/customers/c1/consents",
                               {"tracking": True, "at": ahead}, token=app)
    assert status == 400 and "in the future" in body["message"]
    status, body = raw_call(central, "PUT", "/api/v1/customers/c1/consents",
                            b'{"tracking": true, "at": Infinity}', app)
    assert status == 400
    assert central.count("SELECT COUNT(*) AS n FROM consents") == 0


def test_withdrawal_wins_over_a_grant_dated_within_the_skew(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    # A store forges a grant dated as far ahead as the clock skew allows...
    _, body = central.post_events([presence("c1", "s0"), channel_event(
        "consent", "kiosk", at=time.time() + 250, customer_id="c1",
        consents={"tracking": True})])
    assert body["accepted"], body
    # ...the customer withdraws a moment later, without giving a time: it applies.
    status, body = central.api("PUT", "/api/v1/customers/c1/consents", {"tracking": False},
                               token=app)
    assert status == 200 and body["applied"] == {"tracking": True}
    assert central.profile("c1")["consents"]["tracking"]["granted"] is False


def test_kiosk_grant_cannot_undo_the_customers_withdrawal(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    grant(central, "c1", at=time.time() - 1000)
    central.api("PUT", "/api/v1/customers/c1/consents", {"tracking": False}, token=app)
    time.sleep(0.01)
    _, body = central.post_events([presence("c1", "s0"), channel_event(
        "consent", "kiosk", customer_id="c1", consents={"tracking": True})])
    assert len(body["accepted"]) == 2  # stored as an event, but the decision stands
    assert central.profile("c1")["consents"]["tracking"]["granted"] is False
    # The customer's own channel can grant it back.
    central.api("PUT", "/api/v1/customers/c1/consents", {"tracking": True}, token=app)
    assert central.profile("c1")["consents"]["tracking"]["granted"] is True


@pytest.mark.parametrize("stored_at", [DAY, float("inf")])
def test_withdrawal_wins_over_a_stored_future_decision(central: Central,
                                                       stored_at: float) -> None:
    """Rows written before future dates were refused (a day ahead, or Infinity)."""
    app = issue(central.db, "channel", "app")
    central.db.run(lambda tx: tx.execute(
        "INSERT INTO customers (customer_id, created_at) VALUES ('c1', 0)"))
    central.db.run(lambda tx: tx.execute(
        "INSERT INTO consents (customer_id, purpose, granted, source, updated_at) "
        "VALUES ('c1', 'tracking', 1, 'kiosk', ?)", (time.time() + stored_at,)))
    central.post_events([presence("c1", "s1", at=time.time() - 10)])
    status, body = central.api("PUT", "/api/v1/customers/c1/consents", {"tracking": False},
                               token=app)
    assert status == 200 and body["applied"] == {"tracking": True}
    profile = central.profile("c1")  # strict JSON even with Infinity stored before
    assert profile["consents"]["tracking"]["granted"] is False
    assert central.count("SELECT COUNT(*) AS n FROM events WHERE customer_id = 'c1'") == 0


SESSIONS = 250_000


def test_customer_with_250k_sessions_is_exported_and_erased(central: Central) -> None:
    """Beyond SQLite's 32,766 and PostgreSQL's 65,535 bound parameters per statement."""
    app = issue(central.db, "channel", "app")
    grant(central, "big", at=time.time() - 1000)
    now = time.time()
    sessions = [f"sess-{i:06d}" for i in range(SESSIONS)]

    def seed(tx: Any) -> None:
        tx.insert_many("identity_links", ("kind", "value", "customer_id", "linked_at"),
                       [("session", s, "big", now) for s in sessions])
        rows = [(f"ev-{i}", "interest", "store", "store:store-a", STORE, None, sessions[i],
                 "00000000000017", now - 100 + i * 0.01, now,
                 json.dumps(interest(sessions[i], event_id=f"ev-{i}")))
                for i in range(0, SESSIONS, 50)]
        tx.insert_many("events", ("event_id", "kind", "channel", "source", "store_id",
                                  "customer_id", "session_id", "gtin", "occurred_at",
                                  "ingested_at", "payload"), rows)

    central.db.run(seed)
    if central.backend == "postgres":
        # A bulk insert a moment ago: give the planner the statistics autovacuum would.
        central.db.run(lambda tx: tx.execute("ANALYZE"))
    central.post_events([presence("big", "sess-000000", at=now - 200)])
    status, export = central.api("GET", "/api/v1/customers/big/export", token=app)
    assert status == 200, export
    assert len(export["profile"]["identity"]["sessions"]) == SESSIONS
    assert len(export["events"]) == SESSIONS // 50 + 1
    status, body = central.api("DELETE", "/api/v1/customers/big", token=app)
    assert status == 202, body
    assert central.count("SELECT COUNT(*) AS n FROM events") == 0
    assert central.count("SELECT COUNT(*) AS n FROM identity_links") == 0
    assert central.count("SELECT COUNT(*) AS n FROM erased_identities "
                         "WHERE kind = 'session'") == SESSIONS
    _, feed = central.api("GET", f"/api/v1/stores/{STORE}/erasures?since=0",
                          token=central.store_token)
    assert [e["customer_id"] for e in feed["erasures"]] == ["big"]
    assert len(feed["erasures"][0]["session_ids"]) == SESSIONS // 50


def test_a_store_records_kiosk_consent_only_for_a_customer_who_showed_their_card(
        central: Central) -> None:
    """The kiosk acts at the customer's request after they identified in that store:
    a consent event for anyone else, grant or withdrawal, is refused and changes nothing."""
    grant(central, "c1", at=time.time() - 1000)
    central.post_events([interest("s-c1", customer="c1")])
    for granted in (True, False):
        _, body = central.post_events([channel_event("consent", "kiosk", customer_id="c1",
                                                     consents={"tracking": granted})])
        assert body["accepted"] == [] and "showed their card" in body["rejected"][0]["reason"]
    assert central.profile("c1")["consents"]["tracking"]["source"] != "kiosk"
    assert central.profile("c1")["timeline"], "the forged withdrawal anonymised nothing"
    # Another store's presence does not count; this store's, an hour before, does not
    # either (store_points_window_s); a card shown here now does.
    other = issue(central.db, "store", "store-b")
    central.post_events([presence("c1", "s-b", store="store-b")], token=other)
    central.post_events([presence("c1", "s-old", at=time.time() - 7200)])
    _, body = central.post_events([channel_event("consent", "kiosk", customer_id="c1",
                                                 consents={"tracking": False})])
    assert body["accepted"] == []
    _, body = central.post_events([presence("c1", "s-now"), channel_event(
        "consent", "kiosk", customer_id="c1", consents={"tracking": False})])
    assert len(body["accepted"]) == 2, body
    assert central.profile("c1")["consents"]["tracking"] == {
        **central.profile("c1")["consents"]["tracking"], "granted": False, "source": "kiosk"}
