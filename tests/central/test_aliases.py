"""Device-scoped aliases: linking, earlier events joining, erasure, export (SQLite and PG)."""

from __future__ import annotations

import time
from typing import Any

from central.credentials import issue
from tests.central.conftest import STORE, Central, channel_event, grant

APP = {"alias": "app-install:abc", "scope": "app"}
GTIN = "00000000000017"


def app_interest(central: Central, token: str, at: float, alias: dict[str, str] | None = APP,
                 **fields: Any) -> dict[str, Any]:
    event = channel_event("interest", "app", at=at, gtin=GTIN, product={"category": "shoes"},
                          **fields)
    if alias is not None:
        event["alias"] = alias
    status, body = central.post_events([event], token=token)
    assert status == 200 and body["accepted"] == [event["event_id"]], body
    return event


def identify(central: Central, token: str, customer: str, at: float,
             alias: dict[str, str] = APP, **fields: Any) -> dict[str, Any]:
    event = channel_event("identify", "app", at=at, customer_id=customer, alias=alias,
                          **fields)
    status, body = central.post_events([event], token=token)
    assert status == 200 and body["accepted"] == [event["event_id"]], body
    return event


def test_alias_links_and_earlier_events_join_the_profile(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    grant(central, "c1", at=time.time() - 1000)
    now = time.time()
    before = [app_interest(central, app, now - 300), app_interest(central, app, now - 200)]
    # Same alias string in another scope is another device: it must not join.
    other = app_interest(central, app, now - 150, alias={**APP, "scope": "web-cookie"})
    link = identify(central, app, "c1", now - 100)
    after = app_interest(central, app, now - 50)

    profile = central.profile("c1")
    assert [{k: a[k] for k in ("alias", "scope")} for a in profile["identity"]["aliases"]] \
        == [APP]
    assert [e["event_id"] for e in profile["timeline"]] == [
        after["event_id"], link["event_id"], before[1]["event_id"], before[0]["event_id"]]
    assert other["event_id"] not in {e["event_id"] for e in profile["timeline"]}
    assert profile["interests"]["products"][0]["gtin"] == GTIN
    # First claim wins: another customer identifying on the same installation does not
    # take its history (a shared tablet is likelier than a better answer).
    grant(central, "c2", at=now - 1000)
    identify(central, app, "c2", now - 10)
    assert central.profile("c2")["identity"]["aliases"] == []
    assert len(central.profile("c1")["timeline"]) == 4


def test_event_with_linked_session_and_alias_counts_once(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    grant(central, "c1", at=time.time() - 1000)
    now = time.time()
    both = app_interest(central, app, now - 200, session_id="sess-9")
    identify(central, app, "c1", now - 100, session_id="sess-9")
    profile = central.profile("c1")
    assert profile["identity"]["sessions"] == ["sess-9"]
    assert [e["event_id"] for e in profile["timeline"]].count(both["event_id"]) == 1
    assert len(profile["timeline"]) == 2


def test_alias_is_validated(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    bad = [{"alias": "x", "scope": "App"}, {"alias": "x", "scope": "a:b"},
           {"alias": "", "scope": "app"}, {"alias": "x"}, {"alias": "x", "scope": "app", "k": 1}]
    events = [channel_event("interest", "app", gtin=GTIN, alias=a) for a in bad]
    events.append(channel_event("identify", "app", customer_id="c1"))
    status, body = central.post_events(events, token=app)
    assert status == 200 and body["accepted"] == []
    reasons = [r["reason"] for r in body["rejected"]]
    assert len(reasons) == len(events)
    assert reasons[-1] == "identify events need session_id or alias"


def test_without_consent_the_alias_is_not_kept(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    now = time.time()
    identify(central, app, "c-no", now - 10)
    row = central.db.run(lambda tx: tx.one("SELECT customer_id, alias_key, payload FROM events"))
    assert row["customer_id"] is None and row["alias_key"] is None
    assert "app-install" not in row["payload"]
    assert central.count("SELECT COUNT(*) AS n FROM identity_links") == 0


def test_withdrawal_unlinks_aliases_and_strips_their_events(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    grant(central, "c1", at=time.time() - 1000)
    now = time.time()
    app_interest(central, app, now - 200)
    identify(central, app, "c1", now - 100)
    assert len(central.profile("c1")["timeline"]) == 2
    grant(central, "c1", tracking=False)
    assert central.profile("c1")["identity"]["aliases"] == []
    assert central.count("SELECT COUNT(*) AS n FROM events WHERE alias_key IS NOT NULL "
                         "OR payload LIKE ?", ("%app-install%",)) == 0


def test_erasure_removes_alias_links_and_events(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    grant(central, "c1", at=time.time() - 1000)
    grant(central, "c2", at=time.time() - 1000)
    now = time.time()
    mine = [app_interest(central, app, now - 300)]
    mine.append(identify(central, app, "c1", now - 200))
    theirs = app_interest(central, app, now - 100, alias={"alias": "other", "scope": "app"})
    identify(central, app, "c2", now - 90, alias={"alias": "other", "scope": "app"})

    status, body = central.api("DELETE", "/api/v1/customers/c1")
    assert status == 202, body
    assert central.count("SELECT COUNT(*) AS n FROM identity_links WHERE kind = 'alias' "
                         "AND customer_id = 'c1'") == 0
    assert central.count("SELECT COUNT(*) AS n FROM events WHERE alias_key = "
                         "'app:app-install:abc'") == 0
    assert theirs["event_id"] in {e["event_id"] for e in central.profile("c2")["timeline"]}
    # The customer only ever used the app: no store holds a copy, so no store's
    # erasure feed names it (least privilege; tests/central/test_scope.py has the
    # store that did see the customer, with the aliases it saw).
    status, feed = central.api("GET", f"/api/v1/stores/{STORE}/erasures?since=0",
                               token=central.store_token)
    assert status == 200 and feed["erasures"] == []
    assert central.count("SELECT COUNT(*) AS n FROM erasures WHERE customer_id = 'c1' "
                         "AND alias_keys LIKE ?", ("%app-install:abc%",)) == 1
    # An app that was offline replays the old alias events: nothing comes back.
    status, replay = central.post_events(
        [{**e, "event_id": e["event_id"] + "-replay"} for e in mine], token=app)
    assert replay["accepted"] == [] and len(replay["duplicate"]) == 2
    assert central.count("SELECT COUNT(*) AS n FROM events WHERE alias_key = "
                         "'app:app-install:abc'") == 0
    # New activity on that installation after the erasure starts afresh, anonymous.
    app_interest(central, app, time.time())
    assert central.api("GET", "/api/v1/customers/c1")[0] == 404


def test_export_includes_aliases_and_their_events(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    grant(central, "c1", at=time.time() - 1000)
    now = time.time()
    early = app_interest(central, app, now - 300)
    identify(central, app, "c1", now - 200)
    status, export = central.api("GET", "/api/v1/customers/c1/export")
    assert status == 200, export
    aliases = export["profile"]["identity"]["aliases"]
    assert [{k: a[k] for k in ("alias", "scope")} for a in aliases] == [APP]
    assert isinstance(aliases[0]["linked_at"], float)
    by_id = {e["event_id"]: e for e in export["events"]}
    assert set(by_id) == {early["event_id"]} | {e["event_id"] for e in export["events"]
                                                if e["kind"] == "identify"}
    assert len(by_id) == 2
    assert by_id[early["event_id"]]["payload"]["alias"] == APP
