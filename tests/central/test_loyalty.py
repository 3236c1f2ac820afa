"""The loyalty ledger: append-only, idempotent per order or purchase, with limits."""

from __future__ import annotations

import time
from typing import Any

import pytest

from central.credentials import issue
from tests.central.conftest import STORE, Central, channel_event, make_central


def loyalty(customer: str, points: int, ref_id: str, kind: str = "purchase",
            channel: str = "kiosk") -> dict[str, Any]:
    return channel_event("loyalty", channel, customer_id=customer, points=points,
                         reference={"kind": kind, "id": ref_id})


def balance(central: Central, customer: str) -> int:
    return central.profile(customer)["loyalty_points"]


def test_points_need_a_reference_and_a_replayed_credit_counts_once(central: Central) -> None:
    status, body = central.post_events([channel_event("loyalty", "kiosk", customer_id="c1",
                                                      points=50)])
    assert body["accepted"] == [] and "reference" in body["rejected"][0]["reason"]
    first = loyalty("c1", 50, "till-1:0001")
    assert central.post_events([first])[1]["accepted"] == [first["event_id"]]
    # The same event again, and the same purchase under a new event id: duplicates.
    again = {**first, "event_id": first["event_id"] + "-retry"}
    _, body = central.post_events([first, again])
    assert body["accepted"] == [] and sorted(body["duplicate"]) == sorted(
        [first["event_id"], again["event_id"]])
    assert balance(central, "c1") == 50
    # Another amount for the same purchase is refused, not added.
    _, body = central.post_events([loyalty("c1", 70, "till-1:0001")])
    assert "already has a credit" in body["rejected"][0]["reason"]
    assert balance(central, "c1") == 50
    assert central.count("SELECT COUNT(*) AS n FROM loyalty_ledger") == 1


def test_two_million_points_are_refused(central: Central) -> None:
    _, body = central.post_events([loyalty("c1", 2_000_000, "p-big")])
    assert body["accepted"] == [] and body["rejected"], body
    _, body = central.post_events([loyalty("c1", 5001, "p-over")])
    assert "at most 5000 points per entry" in body["rejected"][0]["reason"]
    assert central.api("GET", "/api/v1/customers/c1")[0] == 404  # nothing was created


def test_daily_limit_per_customer_across_sources(backend: dict[str, Any]) -> None:
    c = make_central(backend, loyalty_max_points_per_day=1000)
    try:
        web = issue(c.db, "channel", "web")
        _, body = c.post_events([loyalty("c1", 400, f"p{i}") for i in range(2)])
        assert len(body["accepted"]) == 2
        _, body = c.post_events([loyalty("c1", 300, "w1", channel="web")], token=web)
        assert "per customer and day" in body["rejected"][0]["reason"]
        _, body = c.post_events([loyalty("c1", 200, "w2", channel="web")], token=web)
        assert len(body["accepted"]) == 1
        assert c.profile("c1")["loyalty_points"] == 1000
        # Another customer has its own allowance.
        assert len(c.post_events([loyalty("c2", 900, "p9")])[1]["accepted"]) == 1
    finally:
        c.servers[0].stop()
        c.db.close()


def test_debits_cannot_go_below_zero(central: Central) -> None:
    central.post_events([loyalty("c1", 100, "p1")])
    _, body = central.post_events([loyalty("c1", -150, "p2")])
    assert "exceeds the customer's balance" in body["rejected"][0]["reason"]
    _, body = central.post_events([loyalty("c1", -100, "p2")])
    assert body["accepted"]
    assert balance(central, "c1") == 0


def test_order_references_must_be_the_senders_own(central: Central) -> None:
    web = issue(central.db, "channel", "web")
    other = issue(central.db, "store", "store-b")
    order = {"order_id": "o-1", "channel": "web", "customer_id": "c1",
             "created_at": time.time(), "fulfilment": {"type": "click_and_collect",
                                                       "store_id": STORE},
             "lines": [{"gtin": "00000000000017", "quantity": 1}]}
    assert central.api("POST", "/api/v1/orders", order, token=web)[0] == 201
    cases = [
        (loyalty("c1", 10, "o-missing", kind="order"), central.store_token, "no order"),
        (loyalty("c2", 10, "o-1", kind="order"), central.store_token, "no order"),
        (loyalty("c1", 10, "o-1", kind="order"), other, "not fulfilled by this store"),
    ]
    for event, token, reason in cases:
        _, body = central.post_events([event], token=token)
        assert reason in body["rejected"][0]["reason"], body
    # The fulfilling store may credit it, once.
    _, body = central.post_events([loyalty("c1", 10, "o-1", kind="order")])
    assert body["accepted"]
    _, body = central.post_events([loyalty("c1", 10, "o-1", kind="order",
                                           channel="web")], token=web)
    assert body["duplicate"] and not body["accepted"]
    assert balance(central, "c1") == 10


def test_the_ledger_is_append_only_in_the_database(central: Central) -> None:
    central.post_events([loyalty("c1", 10, "p1")])

    def tamper(tx: Any) -> None:
        tx.execute("UPDATE loyalty_ledger SET points = 1000000")

    with pytest.raises(Exception, match="append-only"):
        central.db.run(tamper)
    assert balance(central, "c1") == 10


def test_erasure_removes_the_ledger(central: Central) -> None:
    app = issue(central.db, "channel", "app")
    central.post_events([loyalty("c1", 10, "p1")])
    assert central.api("DELETE", "/api/v1/customers/c1", token=app)[0] == 202
    assert central.count("SELECT COUNT(*) AS n FROM loyalty_ledger") == 0
