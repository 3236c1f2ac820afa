"""Consent, erasure (with the edge feed), and export."""

from __future__ import annotations

import json
import time

from central.credentials import issue
from tests.central.conftest import STORE, Central, channel_event, grant, interest, presence


def test_without_consent_events_are_kept_only_anonymous(central: Central) -> None:
    now = time.time()
    central.post_events([presence("cust-secret", "sess-secret", at=now - 60),
                         interest("sess-secret", customer="cust-secret", at=now - 50)])
    rows = central.db.run(lambda tx: tx.all(
        "SELECT customer_id, session_id, payload, store_id FROM events"))
    assert len(rows) == 2
    for row in rows:
        assert row["customer_id"] is None and row["session_id"] is None
        assert "cust-secret" not in row["payload"] and "sess-secret" not in row["payload"]
        assert row["store_id"] == STORE
    assert central.count("SELECT COUNT(*) AS n FROM identity_links") == 0
    # The member still has a profile: who they are, points, consents; nothing about the visit.
    profile = central.profile("cust-secret")
    assert profile["tracking"] is False and profile["consents"] == {}
    assert profile["timeline"] == [] and profile["last_seen"] is None
    assert profile["identity"]["sessions"] == []
    assert profile["interests"] == {"products": [], "categories": []}


def test_consent_given_later_records_from_then_on_and_never_brings_back_the_past(
        central: Central) -> None:
    now = time.time()
    central.post_events([presence("c9", "s-before", at=now - 300),
                         interest("s-before", customer="c9", at=now - 290)])
    grant(central, "c9", at=now - 200)
    central.post_events([presence("c9", "s-after", at=now - 100),
                         interest("s-after", customer="c9", at=now - 90)])
    profile = central.profile("c9")
    assert profile["tracking"] is True
    assert [e["occurred_at"] for e in profile["timeline"]] == [now - 90, now - 100]
    assert profile["identity"]["sessions"] == ["s-after"]
    assert central.count("SELECT COUNT(*) AS n FROM events") == 4  # two kept anonymous


def test_consent_event_in_same_batch_applies_first(central: Central) -> None:
    crm = issue(central.db, "channel", "crm")
    now = time.time()
    central.post_events([channel_event("consent", "crm", at=now - 100, customer_id="c1",
                                       consents={"tracking": True})], token=crm)
    central.post_events([presence("c1", "s1", at=now - 50)])
    profile = central.profile("c1")
    assert profile["consents"]["tracking"]["granted"] is True
    assert profile["identity"]["sessions"] == ["s1"]


def test_withdrawing_consent_anonymises_past_events(central: Central) -> None:
    grant(central, "c1", at=time.time() - 1000)
    now = time.time()
    central.post_events([presence("c1", "s1", at=now - 60), interest("s1", at=now - 50),
                         interest("s1", customer="c1", at=now - 40)])
    assert len(central.profile("c1")["timeline"]) == 3
    grant(central, "c1", tracking=False)
    profile = central.profile("c1")
    assert profile["timeline"] == [] and profile["identity"]["sessions"] == []
    assert central.count("SELECT COUNT(*) AS n FROM events WHERE customer_id IS NOT NULL "
                         "OR session_id IS NOT NULL") == 0
    assert central.count("SELECT COUNT(*) AS n FROM events") == 3
    # An older decision arriving late does not overwrite the newer one.
    grant(central, "c1", tracking=True, at=now - 500)
    assert central.profile("c1")["consents"]["tracking"]["granted"] is False


def test_erasure_deletes_everything_and_feeds_edges(central: Central) -> None:
    grant(central, "c1")
    grant(central, "c2")
    now = time.time()
    mine = [presence("c1", "s1", at=now - 60), interest("s1", at=now - 50),
            interest("s1", customer="c1", at=now - 40)]
    central.post_events(mine + [presence("c2", "s2", at=now - 30)])
    status, body = central.api("DELETE", "/api/v1/customers/c1")
    assert status == 202, body
    assert central.api("GET", "/api/v1/customers/c1")[0] == 404
    assert central.count("SELECT COUNT(*) AS n FROM events") == 1
    assert central.count("SELECT COUNT(*) AS n FROM events WHERE customer_id = 'c2'") == 1
    # An edge that was offline replays the customer's old events: nothing comes back.
    status, replay = central.post_events(mine)
    assert replay["accepted"] == [] and len(replay["duplicate"]) == 3
    assert central.api("GET", "/api/v1/customers/c1")[0] == 404
    # Its erasure feed tells it what to delete locally.
    status, feed = central.api("GET", f"/api/v1/stores/{STORE}/erasures?since=0",
                               token=central.store_token)
    assert status == 200
    assert [(e["customer_id"], e["session_ids"]) for e in feed["erasures"]] == [("c1", ["s1"])]
    status, later = central.api("GET", f"/api/v1/stores/{STORE}/erasures?since={feed['next']}",
                                token=central.store_token)
    assert later["erasures"] == [] and later["next"] == feed["next"]
    # A store cannot read another store's feed; new activity after erasure starts afresh.
    assert central.api("GET", "/api/v1/stores/store-b/erasures",
                       token=central.store_token)[0] == 403
    grant(central, "c1")
    central.post_events([presence("c1", "s3")])
    assert central.profile("c1")["identity"]["sessions"] == ["s3"]


def test_export_contains_everything_held(central: Central) -> None:
    grant(central, "c1")
    crm = issue(central.db, "channel", "crm")
    now = time.time()
    central.post_events([presence("c1", "s1", at=now - 60), interest("s1", at=now - 50)])
    central.post_events([channel_event("profile", "crm", customer_id="c1",
                                       fields={"email": "c1@example.com"})], token=crm)
    status, export = central.api("GET", "/api/v1/customers/c1/export")
    assert status == 200
    assert len(export["events"]) == 3
    assert export["profile"]["identity"]["fields"]["email"]["value"] == "c1@example.com"
    assert {e["payload"]["type"] for e in export["events"]} == {"presence", "interest",
                                                               "profile"}
    json.dumps(export)  # plain JSON all the way down
    assert central.api("GET", "/api/v1/customers/c1/export", token=central.store_token)[0] == 403


def test_consent_body_is_validated(central: Central) -> None:
    for body in ({}, {"tracking": "yes"}, {"spam": True}, [True]):
        assert central.api("PUT", "/api/v1/customers/c1/consents", body)[0] == 400
