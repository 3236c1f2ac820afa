"""Central's order lifecycle: allowed moves, refusals with a reason, idempotency, scope.

Every test runs on SQLite and on PostgreSQL (the ``central`` fixture), over HTTP.
"""

from __future__ import annotations

import time
from typing import Any

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.credentials import issue
from central.openapi import document
from contract.order_lifecycle import (
    STATUSES,
    TRANSITIONS,
    TransitionError,
    check_move,
    is_newer,
    lifecycle_status,
)
from tests.central.conftest import STORE, Central


def web_order(order_id: str, store: str = STORE, channel: str = "web") -> dict[str, Any]:
    return {"order_id": order_id, "channel": channel, "customer_id": "c1",
            "created_at": time.time(),
            "fulfilment": {"type": "click_and_collect", "store_id": store},
            "lines": [{"gtin": "00000000000017", "quantity": 1, "unit_price_cents": 4999}]}


def move(central: Central, order_id: str, status: str, change_id: str, token: str,
         **extra: Any) -> tuple[int, Any]:
    return central.api("POST", f"/api/v1/orders/{order_id}/status",
                       {"status": status, "change_id": change_id, **extra}, token=token)


def test_the_whole_lifecycle_is_logged_with_who_and_when(central: Central) -> None:
    web = issue(central.db, "channel", "web")
    status, created = central.api("POST", "/api/v1/orders", web_order("w-1"), token=web)
    assert status == 201 and created["pickup_code"].isdigit() and len(created["pickup_code"]) == 6
    assert move(central, "w-1", "paid", "pay-1", web, actor="checkout")[0] == 201
    store = central.store_token
    for n, step in enumerate(("preparing", "ready", "collected")):
        status, body = move(central, "w-1", step, f"step-{n}", store, actor="alice",
                            occurred_at=time.time() - 5)
        assert status == 201 and body["result"] == "changed", body
    status, order = central.api("GET", "/api/v1/orders/w-1", token=store)
    assert status == 200 and order["status"] == "collected"
    assert order["pickup_code"] == created["pickup_code"]
    history = [(h["previous"], h["status"], h["changed_by"], h["actor"])
               for h in order["history"]]
    assert history == [(None, "placed", "channel:web", None),
                       ("placed", "paid", "channel:web", "checkout"),
                       ("paid", "preparing", f"store:{STORE}", "alice"),
                       ("preparing", "ready", f"store:{STORE}", "alice"),
                       ("ready", "collected", f"store:{STORE}", "alice")]
    assert all(h["recorded_at"] >= h["occurred_at"] for h in order["history"])
    # Final: nothing moves a collected order, and the refusal says why.
    status, body = move(central, "w-1", "cancelled", "late-cancel", store)
    assert status == 409 and "collected" in body["message"]


def test_refused_moves_are_4xx_with_a_reason_and_change_nothing(central: Central) -> None:
    web = issue(central.db, "channel", "web")
    central.api("POST", "/api/v1/orders", web_order("w-2"), token=web)
    store = central.store_token
    status, body = move(central, "w-2", "ready", "skip", store)
    assert status == 409 and "placed cannot become ready" in body["message"]
    assert "allowed: paid, cancelled" in body["message"]
    # The web shop takes payments and cancellations; the floor work is the store's.
    status, body = move(central, "w-2", "paid", "pay", web)
    assert status == 201
    status, body = move(central, "w-2", "preparing", "web-prep", web)
    assert status == 409 and "store" in body["message"]
    for bad in ({"status": "lost", "change_id": "x"}, {"status": "ready"},
                {"status": "ready", "change_id": ""},
                {"status": "ready", "change_id": "x", "actor": "a\nb"},
                {"status": "ready", "change_id": "x", "extra": 1}):
        status, body = central.api("POST", "/api/v1/orders/w-2/status", bad, token=store)
        assert status == 400, (bad, body)
    assert move(central, "nope", "paid", "n-1", store)[0] == 404
    assert central.count("SELECT COUNT(*) AS n FROM order_changes WHERE order_id = 'w-2'") == 2
    status, order = central.api("GET", "/api/v1/orders/w-2", token=store)
    assert order["status"] == "paid"


def test_replays_are_idempotent(central: Central) -> None:
    web = issue(central.db, "channel", "web")
    order = web_order("w-3")
    _, created = central.api("POST", "/api/v1/orders", order, token=web)
    assert move(central, "w-3", "paid", "pay-3", web)[0] == 201
    # The same change again (a retry after a lost answer): 200 duplicate, logged once...
    status, body = move(central, "w-3", "paid", "pay-3", web)
    assert status == 200 and body["result"] == "duplicate"
    # ...even after the order moved on.
    assert move(central, "w-3", "preparing", "prep-3", central.store_token)[0] == 201
    status, body = move(central, "w-3", "paid", "pay-3", web)
    assert status == 200 and body["result"] == "duplicate"
    # The status it is in already, under a new change id: unchanged, nothing logged.
    status, body = move(central, "w-3", "preparing", "prep-3b", central.store_token)
    assert status == 200 and body["result"] == "unchanged"
    # A change id reused for another change is refused.
    status, body = move(central, "w-3", "cancelled", "pay-3", web)
    assert status == 409 and "change_id" in body["message"]
    assert central.count("SELECT COUNT(*) AS n FROM order_changes WHERE order_id = 'w-3'") == 3
    # The same order posted again: a duplicate, with the pickup code it was given.
    status, again = central.api("POST", "/api/v1/orders", order, token=web)
    assert status == 200 and again["status"] == "duplicate"
    assert again["pickup_code"] == created["pickup_code"]
    assert central.api("GET", "/api/v1/orders/w-3", token=web)[1]["status"] == "preparing"


def test_a_store_cannot_read_or_change_another_stores_orders(central: Central) -> None:
    web = issue(central.db, "channel", "web")
    other = issue(central.db, "store", "store-b")
    app = issue(central.db, "channel", "app")
    central.api("POST", "/api/v1/orders", web_order("w-4", store="store-b"), token=web)
    # store-a: not its order; same answer as an unknown id, and nothing changes.
    assert central.api("GET", "/api/v1/orders/w-4", token=central.store_token)[0] == 404
    assert move(central, "w-4", "cancelled", "a-cancel", central.store_token)[0] == 404
    # Another channel cannot touch the web shop's order either.
    assert central.api("GET", "/api/v1/orders/w-4", token=app)[0] == 404
    assert move(central, "w-4", "cancelled", "app-cancel", app)[0] == 404
    # store-a's feed holds nothing of store-b, and it may not read store-b's feed.
    status, feed = central.api("GET", f"/api/v1/stores/{STORE}/order-changes?since=0",
                               token=central.store_token)
    assert status == 200 and feed["changes"] == []
    assert central.api("GET", "/api/v1/stores/store-b/order-changes?since=0",
                       token=central.store_token)[0] == 403
    status, feed = central.api("GET", "/api/v1/stores/store-b/order-changes?since=0",
                               token=other)
    assert [(c["order_id"], c["status"]) for c in feed["changes"]] == [("w-4", "placed")]
    assert central.api("GET", "/api/v1/orders/w-4", token=other)[1]["status"] == "placed"
    assert central.count("SELECT COUNT(*) AS n FROM order_changes") == 1


def test_the_store_feed_pages_new_orders_and_changes_after_a_cursor(central: Central) -> None:
    web = issue(central.db, "channel", "web")
    for n in range(3):
        central.api("POST", "/api/v1/orders", web_order(f"w-5{n}"), token=web)
    move(central, "w-50", "paid", "p-50", web)
    move(central, "w-51", "cancelled", "c-51", web)
    seen, since = [], 0
    while True:
        status, page = central.api(
            "GET", f"/api/v1/stores/{STORE}/order-changes?since={since}&limit=2",
            token=central.store_token)
        assert status == 200
        if not page["changes"]:
            break
        seen += page["changes"]
        since = page["next"]
    assert [(c["order_id"], c["status"]) for c in seen] == [
        ("w-50", "placed"), ("w-51", "placed"), ("w-52", "placed"), ("w-50", "paid"),
        ("w-51", "cancelled")]
    assert [c["seq"] for c in seen] == sorted(c["seq"] for c in seen)
    assert all(c["order"]["order_id"] == c["order_id"] and c["pickup_code"] for c in seen)
    # Each item is what central's OpenAPI document says an OrderChange is.
    components = document()["components"]
    check = fastjsonschema.compile({"components": components,
                                    "$ref": "#/components/schemas/OrderChange"})
    for c in seen:
        check(c)
    # A kiosk order has no central pickup code: the kiosk's is the edge's own.
    kiosk = {**web_order("k-1"), "channel": "kiosk"}
    status, body = central.api("POST", "/api/v1/orders", kiosk, token=central.store_token)
    assert status == 201 and body["pickup_code"] is None


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([*STATUSES, "payment_declined"]), st.sampled_from(STATUSES))
def test_the_lifecycle_table_and_the_merge_rule_agree(current: str, target: str) -> None:
    """Every move goes forward or to cancelled; an accepted move is always 'newer'."""
    lifecycle = lifecycle_status(current)
    try:
        moved = check_move(current, target)
    except TransitionError as exc:
        assert target not in TRANSITIONS[lifecycle] and target != lifecycle
        assert lifecycle in str(exc) and target in str(exc)
        return
    assert moved == (lifecycle != target)
    if moved:
        assert target in TRANSITIONS[lifecycle]
        assert is_newer(target, current) and not is_newer(current, target)


@pytest.mark.parametrize("final", ["collected", "cancelled"])
def test_final_statuses_are_never_overtaken(final: str) -> None:
    assert not any(is_newer(s, final) for s in STATUSES)
    assert TRANSITIONS[final] == ()
