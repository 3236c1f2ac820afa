"""Profile view: identity merge, survivorship, interests with decay, last seen, timeline."""

from __future__ import annotations

import time

from central.credentials import issue
from central.interests import decay
from tests.central.conftest import Central, channel_event, grant, interest, presence

DAY = 86_400.0


def test_anonymous_session_joins_profile_when_it_identifies(central: Central) -> None:
    grant(central, "c1")
    t0 = time.time() - 600
    anon = [interest("sA", gtin="00000000000031", at=t0 + i, category="jackets")
            for i in range(3)]
    status, body = central.post_events(anon)
    assert status == 200 and len(body["accepted"]) == 3
    assert central.profile("c1")["timeline"] == []  # not linked yet
    joined = presence("c1", "sA", at=t0 + 10, zone="fitting")
    status, _ = central.post_events([joined])
    assert status == 200
    now = time.time()
    profile = central.profile("c1")
    assert profile["identity"]["sessions"] == ["sA"]
    assert {e["event_id"] for e in profile["timeline"]} == {e["event_id"] for e in
                                                           [*anon, joined]}
    # Three taps ~10 minutes old: each weighs 0.5 ** (age / half-life), just under 1.
    half_life = central.app.config["CENTRAL"].interest_half_life_days
    expected = sum(decay(now - e["received_at"], half_life) for e in anon)
    (product,) = profile["interests"]["products"]
    assert product["gtin"] == "00000000000031"
    assert abs(product["score"] - expected) < 1e-3 and expected < 3.0
    assert profile["last_seen"]["zone"] == "fitting"
    # Later anonymous events of the same session also land in the profile.
    late = interest("sA", gtin="00000000000048", at=t0 + 20)
    central.post_events([late])
    assert late["event_id"] in {e["event_id"] for e in central.profile("c1")["timeline"]}


def test_link_order_does_not_matter_and_sessions_stay_separate(central: Central) -> None:
    grant(central, "c1")
    grant(central, "c2")
    t0 = time.time() - 100
    central.post_events([presence("c1", "s1", at=t0), presence("c2", "s2", at=t0)])
    central.post_events([interest("s1", gtin="00000000000017", at=t0 + 1),
                         interest("s2", gtin="00000000000024", at=t0 + 1)])
    assert [p["gtin"] for p in central.profile("c1")["interests"]["products"]] == [
        "00000000000017"]
    assert [p["gtin"] for p in central.profile("c2")["interests"]["products"]] == [
        "00000000000024"]


def test_interest_scores_decay_with_time(central: Central) -> None:
    grant(central, "c1")
    now = time.time()
    old = [interest("s1", gtin="00000000000017", customer="c1", at=now - 28 * DAY,
                    category="old") for _ in range(3)]
    new = [interest("s1", gtin="00000000000024", customer="c1", at=now - 60, category="new")]
    central.post_events(old + new)
    products = central.profile("c1")["interests"]["products"]
    # Three taps four weeks ago (two half-lives) weigh 3/4; one tap now weighs ~1.
    assert [p["gtin"] for p in products] == ["00000000000024", "00000000000017"]
    assert abs(products[1]["score"] - 0.75) < 0.01
    cats = central.profile("c1")["interests"]["categories"]
    assert cats[0]["category"] == "new"


def test_timeline_spans_stores_and_channels_newest_first(central: Central) -> None:
    grant(central, "c1")
    other = issue(central.db, "store", "store-b")
    app = issue(central.db, "channel", "app")
    now = time.time()
    central.post_events([presence("c1", "s1", at=now - 300)])
    central.post_events([presence("c1", "s2", store="store-b", at=now - 200, zone="z9")],
                        token=other)
    central.post_events([channel_event("loyalty", "app", at=now - 100, customer_id="c1",
                                       points=40, reference={"kind": "purchase", "id": "p1"})],
                        token=app)
    profile = central.profile("c1")
    assert [(e["channel"], e.get("store_id")) for e in profile["timeline"]] == [
        ("app", None), ("store", "store-b"), ("store", "store-a")]
    assert profile["last_seen"] == {"store_id": "store-b", "zone": "z9",
                                    "at": profile["last_seen"]["at"], "channel": "store"}
    assert profile["loyalty_points"] == 40


def test_survivorship_rules_per_field(central: Central) -> None:
    crm = issue(central.db, "channel", "crm")
    web = issue(central.db, "channel", "web")
    now = time.time()
    central.post_events([channel_event("profile", "crm", at=now - 500, customer_id="c1", fields={
        "name": "Ada Lovelace", "email": "ada@old.example", "phone": "+33 1 23"})], token=crm)
    central.post_events([channel_event("profile", "web", at=now - 100, customer_id="c1", fields={
        "name": "ada", "email": "ada@new.example", "phone": "+33 1 23 45 67 89"})], token=web)
    central.post_events([channel_event("profile", "web", at=now - 50, customer_id="c1", fields={
        "phone": "", "email": None})], token=web)
    fields = central.profile("c1")["identity"]["fields"]
    assert fields["name"]["value"] == "Ada Lovelace" and fields["name"]["source"] == "crm"
    assert fields["email"]["value"] == "ada@new.example"  # most recent non-empty
    assert fields["phone"]["value"] == "+33 1 23 45 67 89"  # most complete


def test_survivorship_is_configurable(backend: dict) -> None:
    from tests.central.conftest import make_central

    c = make_central(backend, survivorship={"name": {"rule": "source_priority",
                                                     "sources": ["web", "crm"]}})
    try:
        crm = issue(c.db, "channel", "crm")
        web = issue(c.db, "channel", "web")
        now = time.time()
        c.post_events([channel_event("profile", "web", at=now - 500, customer_id="c1",
                                     fields={"name": "From Web"})], token=web)
        c.post_events([channel_event("profile", "crm", at=now - 10, customer_id="c1",
                                     fields={"name": "From CRM"})], token=crm)
        assert c.profile("c1")["identity"]["fields"]["name"]["value"] == "From Web"
    finally:
        c.servers[0].stop()
        c.db.close()


def test_unknown_customer_is_404(central: Central) -> None:
    status, body = central.api("GET", "/api/v1/customers/nobody")
    assert status == 404 and body["error"] == "NotFound"
