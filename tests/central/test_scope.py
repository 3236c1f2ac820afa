"""What a store token may do (issue 11, section 1), against the real service on both engines.

A leaked store token must expose only what that store's floor needs: a profile
summary of a customer who identified there recently with consent, at a
bounded rate, no contact data; no writes to contact data or free points; only
orders it fulfils and erasure orders of customers it holds.
"""

from __future__ import annotations

import time
from typing import Any

from central import create_app
from central.credentials import issue
from central.rate_limit import RateLimiter
from central.server import ServerThread
from tests.central.conftest import (
    ADMIN_TOKEN,
    STORE,
    Central,
    channel_event,
    grant,
    interest,
    make_central,
    presence,
)
from tests.central.http import call

DAY = 86_400.0
CONTACT = ("email", "phone", "address", "birth_date")


def _crm_profile(central: Central, customer: str) -> None:
    crm = issue(central.db, "channel", "crm")
    status, body = central.post_events([channel_event(
        "profile", "crm", customer_id=customer, at=time.time() - 500,
        fields={"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+33 1 23 45",
                "address": "1 rue X, Paris", "birth_date": "1815-12-10"})], token=crm)
    assert status == 200 and body["rejected"] == [], body


def test_store_reads_only_a_summary_of_a_customer_seen_there(central: Central) -> None:
    grant(central, "c1", at=time.time() - 1000)
    _crm_profile(central, "c1")
    other = issue(central.db, "store", "store-b")
    now = time.time()
    central.post_events([presence("c1", "s1", at=now - 60), interest("s1", at=now - 50)])
    central.post_events([presence("c1", "s2", store="store-b", at=now - 40, zone="secret")],
                        token=other)
    status, summary = central.api("GET", "/api/v1/customers/c1", token=central.store_token)
    assert status == 200, summary
    assert set(summary) == {"customer_id", "name", "loyalty_points", "interests", "last_seen",
                            "timeline"}
    assert summary["name"] == "Ada Lovelace"
    text = repr(summary)
    for secret in ("ada@example.com", "+33 1 23 45", "rue X", "1815", "store-b", "secret",
                   "s1", "s2", "consents", "tracking"):
        assert secret not in text, secret
    assert {e.get("store_id") for e in summary["timeline"]} == {STORE}
    assert summary["last_seen"] is None  # last seen in the other store: not this store's business
    # The other store sees its own part only.
    status, theirs = central.api("GET", "/api/v1/customers/c1", token=other)
    assert status == 200 and theirs["last_seen"]["zone"] == "secret"
    assert {e.get("store_id") for e in theirs["timeline"]} == {"store-b"}
    # The admin (and channels) still read the full profile.
    full = central.profile("c1")
    assert full["identity"]["fields"]["email"]["value"] == "ada@example.com"


def test_store_cannot_tell_unknown_from_invisible_customers(central: Central) -> None:
    grant(central, "seen-elsewhere", at=time.time() - 1000)
    grant(central, "no-consent-yet", at=time.time() - 1000)
    other = issue(central.db, "store", "store-b")
    central.post_events([presence("seen-elsewhere", "sx", store="store-b")], token=other)
    # Identified here without consent: kept anonymous, so not visible either.
    central.post_events([presence("never-consented", "sy")])
    answers = {cid: central.api("GET", f"/api/v1/customers/{cid}", token=central.store_token)
               for cid in ("seen-elsewhere", "never-consented", "does-not-exist")}
    assert {status for status, _ in answers.values()} == {404}
    messages = {body["message"].replace(cid, "<id>") for cid, (_, body) in answers.items()}
    assert len(messages) == 1, messages  # same answer whether or not the id exists


def test_visibility_ends_with_the_window_and_with_withdrawal(backend: dict[str, Any]) -> None:
    c = make_central(backend, store_profile_window_days=1)
    try:
        grant(c, "old", at=time.time() - 10 * DAY)
        grant(c, "recent", at=time.time() - 10 * DAY)
        c.post_events([presence("old", "so", at=time.time() - 3 * DAY),
                       presence("recent", "sr", at=time.time() - 60)])
        assert c.api("GET", "/api/v1/customers/old", token=c.store_token)[0] == 404
        assert c.api("GET", "/api/v1/customers/recent", token=c.store_token)[0] == 200
        grant(c, "recent", tracking=False)
        assert c.api("GET", "/api/v1/customers/recent", token=c.store_token)[0] == 404
        # The membership stays (so an erasure still reaches the store), the time does not.
        assert c.count("SELECT COUNT(*) AS n FROM customer_stores WHERE customer_id = 'recent' "
                       "AND identified_at IS NULL") == 1
    finally:
        c.servers[0].stop()
        c.db.close()


def test_lookups_are_rate_limited_per_token(backend: dict[str, Any]) -> None:
    c = make_central(backend, store_lookups_per_minute=5)
    try:
        other = issue(c.db, "store", "store-b")
        statuses = [c.api("GET", f"/api/v1/customers/probe-{i}", token=c.store_token)[0]
                    for i in range(8)]
        assert statuses[:5] == [404] * 5 and statuses[5:] == [429] * 3
        status, body = c.api("GET", "/api/v1/customers/probe-x", token=c.store_token)
        assert status == 429 and "lookups per minute" in body["message"]
        # Another token has its own budget; the admin is not limited.
        assert c.api("GET", "/api/v1/customers/probe-y", token=other)[0] == 404
        assert c.api("GET", "/api/v1/customers/probe-z")[0] == 404
    finally:
        c.servers[0].stop()
        c.db.close()


def test_lookup_rate_is_shared_by_every_worker(backend: dict[str, Any]) -> None:
    """Two workers on one database (as gunicorn runs them) give a token 5/min, not 2 x 5."""
    c = make_central(backend, store_lookups_per_minute=5)
    second = ServerThread(create_app({"admin_token": ADMIN_TOKEN, **backend,
                                      "store_lookups_per_minute": 5})).start()
    try:
        statuses = []
        for i in range(8):  # alternate workers, as a load balancer would
            url = (c.url, second.url)[i % 2]
            statuses.append(call("GET", f"{url}/api/v1/customers/probe-{i}", c.store_token,
                                 None)[0])
        assert statuses == [404] * 5 + [429] * 3
    finally:
        second.stop()
        c.servers[0].stop()
        c.db.close()


def test_rate_limiter_refills_and_never_mints_on_a_clock_step_back(backend: dict[str, Any]
                                                                   ) -> None:
    c = make_central(backend)
    try:
        now = [1000.0]
        limiter = RateLimiter(c.db, clock=lambda: now[0])
        # 2/min: two at once, then one token every 30 s
        assert [limiter.allow("k", 2) for _ in range(3)] == [0.0, 0.0, 30.0]
        now[0] -= 500  # another worker's clock behind: no tokens from the past
        assert limiter.allow("k", 2) > 0
        now[0] = 1030.0
        assert limiter.allow("k", 2) == 0.0 and limiter.allow("k", 2) > 0
    finally:
        c.servers[0].stop()
        c.db.close()


def test_retry_after_header_on_429(backend: dict[str, Any]) -> None:
    import urllib.error
    import urllib.request

    c = make_central(backend, store_lookups_per_minute=1)
    try:
        c.api("GET", "/api/v1/customers/x", token=c.store_token)
        req = urllib.request.Request(c.url + "/api/v1/customers/x",
                                     headers={"Authorization": f"Bearer {c.store_token}"})
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as exc:
            assert exc.code == 429 and 1 <= int(exc.headers["Retry-After"]) <= 60
        else:
            raise AssertionError("second lookup was not limited")
    finally:
        c.servers[0].stop()
        c.db.close()


def test_kiosk_events_cannot_change_contact_data(central: Central) -> None:
    _crm_profile(central, "c1")
    for field in (*CONTACT, "name"):
        status, body = central.post_events([channel_event(
            "profile", "kiosk", customer_id="c1", fields={field: "attacker@evil.example"})])
        assert status == 200 and body["accepted"] == [], body
        assert "contact data" in body["rejected"][0]["reason"]
    status, body = central.post_events([channel_event(
        "profile", "kiosk", customer_id="c1", fields={"preferred_store": STORE})])
    assert body["accepted"] and not body["rejected"]
    fields = central.profile("c1")["identity"]["fields"]
    assert fields["email"]["value"] == "ada@example.com"
    assert fields["preferred_store"]["value"] == STORE


def test_store_queues_only_orders_it_fulfils(central: Central) -> None:
    def kiosk_order(order_id: str, fulfilment: dict[str, Any]) -> dict[str, Any]:
        return {"order_id": order_id, "channel": "kiosk", "customer_id": "c1",
                "created_at": time.time(), "fulfilment": fulfilment,
                "lines": [{"gtin": "00000000000017", "quantity": 1}]}

    addr = {"line1": "1 rue X"}
    cases = [
        (kiosk_order("k1", {"type": "click_and_collect", "store_id": STORE}), 201),
        (kiosk_order("k2", {"type": "home_delivery", "address": addr}), 201),  # warehouse
        (kiosk_order("k3", {"type": "click_and_collect", "store_id": "store-b"}), 403),
        (kiosk_order("k4", {"type": "home_delivery", "address": addr,
                            "store_id": "store-b"}), 403),
        (kiosk_order("k5", {"type": "click_and_collect", "store_id": "web-warehouse"}), 403),
    ]
    for order, expected in cases:
        status, body = central.api("POST", "/api/v1/orders", order, token=central.store_token)
        assert status == expected, (order["order_id"], body)
    assert central.count("SELECT COUNT(*) AS n FROM orders WHERE store_id = 'store-b'") == 0
    other = issue(central.db, "store", "store-b")
    assert central.api("GET", "/api/v1/stores/store-b/orders", token=other)[1]["orders"] == []


def test_erasure_orders_reach_only_the_stores_that_hold_the_customer(central: Central) -> None:
    other = issue(central.db, "store", "store-b")
    app = issue(central.db, "channel", "app")
    for cid in ("here", "there", "online"):
        grant(central, cid, at=time.time() - 1000)
    now = time.time()
    central.post_events([presence("here", "s-here", at=now - 60),
                         {**interest("s-here", at=now - 50)},
                         channel_event("identify", "kiosk", at=now - 40, customer_id="here",
                                       session_id="s-here",
                                       alias={"alias": "kiosk-7", "scope": "kiosk"})])
    central.post_events([presence("there", "s-there", store="store-b", at=now - 60)],
                        token=other)
    central.post_events([channel_event("identify", "app", customer_id="online",
                                       alias={"alias": "inst-1", "scope": "app"})], token=app)
    # A customer identified here without consent is anonymous at central but its
    # local copy on the edge must still be erased.
    central.post_events([presence("anon-here", "s-anon", at=now - 30)])
    for cid in ("here", "there", "online", "anon-here"):
        assert central.api("DELETE", f"/api/v1/customers/{cid}", token=app)[0] == 202
    _, mine = central.api("GET", f"/api/v1/stores/{STORE}/erasures?since=0",
                          token=central.store_token)
    _, theirs = central.api("GET", "/api/v1/stores/store-b/erasures?since=0", token=other)
    assert [(e["customer_id"], e["session_ids"], e["aliases"]) for e in mine["erasures"]] == [
        ("here", ["s-here"], [{"alias": "kiosk-7", "scope": "kiosk"}]),
        ("anon-here", [], [])]
    assert [(e["customer_id"], e["session_ids"]) for e in theirs["erasures"]] == [
        ("there", ["s-there"])]
    # Cursors stay per-store monotonic: the next page after the last seq is empty.
    _, later = central.api("GET", f"/api/v1/stores/{STORE}/erasures?since={mine['next']}",
                           token=central.store_token)
    assert later == {"erasures": [], "next": mine["next"]}


def test_a_store_reads_only_the_points_of_a_member_who_showed_their_card_there(
        backend: dict[str, Any]) -> None:
    """Without tracking consent: the balance (nothing else) for store_points_window_s
    after a presence in that store, the same 404 otherwise, never another store's."""
    c = make_central(backend, store_points_window_s=600)
    try:
        other = issue(c.db, "store", "store-b")
        web = issue(c.db, "channel", "web")
        for customer in ("zoe", "old"):
            c.post_events([channel_event("loyalty", "web", customer_id=customer, points=70,
                                         reference={"kind": "purchase", "id": customer})],
                          token=web)
        c.post_events([presence("zoe", "sz", at=time.time() - 60),
                       presence("old", "so", at=time.time() - 3600)])
        path = "/api/v1/stores/{}/customers/{}/points"
        status, body = c.api("GET", path.format(STORE, "zoe"), token=c.store_token)
        assert (status, body) == (200, {"customer_id": "zoe", "loyalty_points": 70})
        assert c.api("GET", "/api/v1/customers/zoe", token=c.store_token)[0] == 404
        for customer in ("old", "never-seen"):  # out of the window, unknown: alike
            status, body = c.api("GET", path.format(STORE, customer), token=c.store_token)
            assert status == 404 and customer in body["message"]
        assert c.api("GET", path.format(STORE, "zoe"), token=other)[0] == 403
        assert c.api("GET", path.format("store-b", "zoe"), token=other)[0] == 404
        assert c.api("GET", path.format(STORE, "zoe"), token=web)[0] == 403
        # Nothing about the visit was kept: the presence is anonymous.
        assert c.count("SELECT COUNT(*) AS n FROM events WHERE customer_id = 'zoe' "
                       "AND kind = 'presence'") == 0
    finally:
        c.servers[0].stop()
        c.db.close()
