"""Ingest over real HTTP, on SQLite and PostgreSQL: auth, idempotence, partial rejection."""

from __future__ import annotations

import pytest

from central.credentials import issue
from tests.central.conftest import STORE, Central, channel_event, grant, interest, presence


def test_replayed_batch_changes_nothing(central: Central) -> None:
    grant(central, "c1")
    batch = [presence("c1", "s1"), interest("s1", customer="c1"), interest("s1")]
    status, first = central.post_events(batch)
    assert status == 200, first
    assert sorted(first["accepted"]) == sorted(e["event_id"] for e in batch)
    assert first["duplicate"] == [] and first["rejected"] == []
    before = central.profile("c1")
    status, again = central.post_events(batch)
    assert status == 200
    assert again["accepted"] == []
    assert sorted(again["duplicate"]) == sorted(e["event_id"] for e in batch)
    assert central.count("SELECT COUNT(*) AS n FROM events") == 3
    after = central.profile("c1")
    assert after["interests"] == before["interests"]
    assert after["timeline"] == before["timeline"]


def test_same_event_twice_in_one_batch_is_stored_once(central: Central) -> None:
    ev = interest("s9")
    status, body = central.post_events([ev, ev])
    assert status == 200
    assert body["accepted"] == [ev["event_id"]]
    assert body["duplicate"] == [ev["event_id"]]
    assert central.count("SELECT COUNT(*) AS n FROM events") == 1


def test_bad_events_rejected_with_reason_good_ones_kept(central: Central) -> None:
    good = interest("s1")
    bad_gtin = interest("s1", gtin="123")
    other_store = interest("s1", store="store-b")
    not_an_object = ["nope"]
    no_id = {"type": "interest"}
    status, body = central.post_events([good, bad_gtin, other_store, not_an_object, no_id])
    assert status == 200
    assert body["accepted"] == [good["event_id"]]
    reasons = {r["index"]: r for r in body["rejected"]}
    assert set(reasons) == {1, 2, 3, 4}
    assert reasons[1]["event_id"] == bad_gtin["event_id"] and "gtin" in reasons[1]["reason"]
    assert "not the authenticated store" in reasons[2]["reason"]
    assert reasons[3]["event_id"] is None
    assert "event_id" in reasons[4]["reason"]
    assert central.count("SELECT COUNT(*) AS n FROM events") == 1


def test_authentication_per_store_and_revocation(central: Central) -> None:
    ev = interest("s1")
    assert central.post_events([ev], token="vtc_not-a-real-token")[0] == 401
    status, body = central.api("POST", "/api/v1/events", {"events": [ev]}, token=None)
    assert status == 200  # admin may ingest for any store
    status, body = central.api("DELETE", f"/api/v1/admin/credentials/store/{STORE}")
    assert status == 200 and body["revoked"]
    assert central.post_events([interest("s1")])[0] == 401
    status, body = central.api("POST", "/api/v1/admin/credentials",
                               {"kind": "store", "name": STORE})
    assert status == 201
    assert central.post_events([interest("s1")], token=body["token"])[0] == 200
    listed = central.api("GET", "/api/v1/admin/credentials")[1]["credentials"]
    assert [c["name"] for c in listed] == [STORE]
    assert "token_hash" not in listed[0]
    hashes = central.db.run(lambda tx: tx.all("SELECT token_hash FROM credentials"))
    assert body["token"] not in {r["token_hash"] for r in hashes}


def test_store_credential_cannot_write_for_another_store(central: Central) -> None:
    other = issue(central.db, "store", "store-b")
    status, body = central.post_events([interest("s1", store=STORE)], token=other)
    assert status == 200 and body["accepted"] == []
    assert "not the authenticated store" in body["rejected"][0]["reason"]


def test_channel_events_share_the_endpoint(central: Central) -> None:
    web = issue(central.db, "channel", "web")
    grant(central, "c7")
    events = [
        channel_event("interest", "web", session_id="w1", gtin="00000000000024",
                      product={"category": "bags"}),
        channel_event("identify", "web", session_id="w1", customer_id="c7"),
        channel_event("loyalty", "web", customer_id="c7", points=120,
                      reference={"kind": "purchase", "id": "web-p1"}),
    ]
    status, body = central.post_events(events, token=web)
    assert status == 200 and len(body["accepted"]) == 3, body
    status, body = central.post_events([channel_event(
        "loyalty", "app", customer_id="c7", points=5,
        reference={"kind": "purchase", "id": "app-p1"})], token=web)
    assert "not the authenticated channel" in body["rejected"][0]["reason"]
    profile = central.profile("c7")
    assert profile["loyalty_points"] == 120
    assert profile["interests"]["categories"][0]["category"] == "bags"
    assert {e["channel"] for e in profile["timeline"]} == {"web"}


@pytest.mark.parametrize("body", [None, {"events": "x"}, [1, 2], {"evts": []}])
def test_malformed_body_is_400(central: Central, body: object) -> None:
    status, resp = central.api("POST", "/api/v1/events", body, token=central.store_token)
    assert status == 400, resp
    assert resp["error"] == "BadRequest"
