"""Orders one store takes for another: a kiosk in store A, click & collect in store B.

Central accepts them only with evidence that a shopper stood at A's kiosk (an anonymous
order within a daily cap, or a customer who identified in A), routes them to B's order
log (B's pickup queue) and to A's (its kiosk shows the status), and lets A only pay or
cancel them before they are paid. On SQLite and PostgreSQL, over HTTP.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from central.credentials import issue
from central.order_push import newest_seq
from tests.central.conftest import STORE, Central, grant, make_central, presence

OTHER = "store-b"
DAY = 86_400.0


def kiosk_order(order_id: str, customer: str | None = None, store: str = OTHER,
                **extra: Any) -> dict[str, Any]:
    """A kiosk order as the edge of ``STORE`` forwards it (its own pickup code included)."""
    return {"order_id": order_id, "channel": "kiosk", "customer_id": customer,
            "created_at": time.time(), "store_id": STORE, "device_id": "kiosk-1",
            "pickup_code": "123456",
            "fulfilment": {"type": "click_and_collect", "store_id": store},
            "lines": [{"gtin": "00000000000017", "quantity": 1, "unit_price_cents": 4999}],
            **extra}


def move(central: Central, order_id: str, status: str, change_id: str, token: str
         ) -> tuple[int, Any]:
    return central.api("POST", f"/api/v1/orders/{order_id}/status",
                       {"status": status, "change_id": change_id}, token=token)


def log_of(central: Central, store: str, token: str) -> list[tuple[str, str]]:
    status, body = central.api("GET", f"/api/v1/stores/{store}/order-changes?since=0",
                               token=token)
    assert status == 200, body
    return [(c["order_id"], c["status"]) for c in body["changes"]]


def test_taken_order_reaches_both_stores_and_the_taker_only_pays(central: Central) -> None:
    b = issue(central.db, "store", OTHER)
    a = central.store_token
    status, body = central.api("POST", "/api/v1/orders", kiosk_order("k-1"), token=a)
    assert status == 201, body
    assert (body["store_id"], body["taken_by"], body["pickup_code"]) == (OTHER, STORE,
                                                                         "123456")
    # The fulfilling store's log has it with the code its counter checks, and who took it.
    _, feed = central.api("GET", f"/api/v1/stores/{OTHER}/order-changes?since=0", token=b)
    (created,) = feed["changes"]
    assert (created["taken_by"], created["store_id"], created["pickup_code"]) == (
        STORE, OTHER, "123456")
    # The taking store reads it and pays it (its kiosk took the payment) ...
    assert central.api("GET", "/api/v1/orders/k-1", token=a)[1]["taken_by"] == STORE
    assert move(central, "k-1", "paid", "pay-1", a)[0] == 201
    # ... but the floor work and a refund after payment are the fulfilling store's.
    for target in ("preparing", "cancelled"):
        status, body = move(central, "k-1", target, f"a-{target}", a)
        assert status == 403 and "before it is paid" in body["message"], body
    for n, step in enumerate(("preparing", "ready")):
        assert move(central, "k-1", step, f"b-{n}", b)[0] == 201
    # Every change reaches both logs; the push nudges both stores.
    expected = [("k-1", s) for s in ("placed", "paid", "preparing", "ready")]
    assert log_of(central, STORE, a) == expected == log_of(central, OTHER, b)
    assert newest_seq(central.db, STORE) == newest_seq(central.db, OTHER) > 0
    # A third store sees nothing of it (the same 404 as an unknown id).
    c = issue(central.db, "store", "store-c")
    assert central.api("GET", "/api/v1/orders/k-1", token=c)[0] == 404
    assert move(central, "k-1", "cancelled", "c-cancel", c)[0] == 404
    assert log_of(central, "store-c", c) == []


def test_the_taker_may_cancel_before_payment(central: Central) -> None:
    a = central.store_token
    assert central.api("POST", "/api/v1/orders", kiosk_order("k-2"), token=a)[0] == 201
    status, body = move(central, "k-2", "cancelled", "give-up", a)
    assert status == 201 and body["result"] == "changed", body


def test_a_store_cannot_inject_orders_into_another_without_evidence(central: Central) -> None:
    a = central.store_token
    refused = {
        "never identified here": kiosk_order("x-1", customer="stranger"),
        "taken by a third store": kiosk_order("x-2", store_id="store-c"),
        "a web order": {**kiosk_order("x-3"), "channel": "web"},
        "home delivery from another store": {
            **kiosk_order("x-4"),
            "fulfilment": {"type": "home_delivery", "store_id": OTHER,
                           "address": {"line1": "1 rue X"}}},
    }
    for why, order in refused.items():
        status, body = central.api("POST", "/api/v1/orders", order, token=a)
        assert status == 403, (why, body)
    # Dated ahead of the clock: refused too (it would stretch the evidence window).
    status, _ = central.api("POST", "/api/v1/orders",
                            kiosk_order("x-5", created_at=time.time() + DAY), token=a)
    assert status == 400
    assert central.count("SELECT COUNT(*) AS n FROM orders") == 0
    assert central.count("SELECT COUNT(*) AS n FROM order_changes") == 0


def test_a_customer_who_identified_in_the_taking_store_is_evidence(
        backend: dict[str, Any]) -> None:
    c = make_central(backend, store_profile_window_days=1)
    try:
        a = c.store_token
        grant(c, "recent", at=time.time() - 10 * DAY)
        grant(c, "old", at=time.time() - 10 * DAY)
        grant(c, "no-consent", tracking=False, at=time.time() - 10 * DAY)
        c.post_events([presence("recent", "s1", at=time.time() - 60),
                       presence("old", "s2", at=time.time() - 3 * DAY),
                       presence("elsewhere", "s3", store="store-c"),
                       presence("no-consent", "s4")])
        answers = {cid: c.api("POST", "/api/v1/orders", kiosk_order(f"o-{cid}", cid),
                              token=a)[0]
                   for cid in ("recent", "old", "elsewhere", "no-consent")}
        # Without tracking consent central keeps only that they identified here: enough.
        assert answers == {"recent": 201, "old": 403, "elsewhere": 403, "no-consent": 201}
        # An order from before the visit window's end is judged by its own created_at
        # (an edge offline for days forwards it late).
        late = kiosk_order("o-late", "old", created_at=time.time() - 3 * DAY + 60)
        assert c.api("POST", "/api/v1/orders", late, token=a)[0] == 201
    finally:
        c.servers[0].stop()
        c.db.close()


def test_anonymous_orders_for_other_stores_are_capped_per_day(backend: dict[str, Any]) -> None:
    c = make_central(backend, taken_anonymous_orders_per_day=2)
    try:
        a = c.store_token
        first = kiosk_order("a-0")
        assert c.api("POST", "/api/v1/orders", first, token=a)[0] == 201
        assert c.api("POST", "/api/v1/orders", kiosk_order("a-1"), token=a)[0] == 201
        status, body = c.api("POST", "/api/v1/orders", kiosk_order("a-2"), token=a)
        assert status == 429 and "anonymous orders a day" in body["message"], body
        # A retry of an accepted order is still its duplicate; own-store orders are not capped.
        assert c.api("POST", "/api/v1/orders", first, token=a)[0] == 200
        assert c.api("POST", "/api/v1/orders", kiosk_order("own", store=STORE),
                     token=a)[0] == 201
    finally:
        c.servers[0].stop()
        c.db.close()


def test_the_anonymous_cap_holds_under_concurrent_orders(backend: dict[str, Any]) -> None:
    """Many kiosk orders at once, through a threaded server: the cap is never passed (the
    count and the insert are one serialised step per taking store, on PostgreSQL too)."""
    cap, n = 3, 16
    c = make_central(backend, taken_anonymous_orders_per_day=cap)
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def order(i: int) -> None:
        barrier.wait(10)
        statuses.append(c.api("POST", "/api/v1/orders", kiosk_order(f"race-{i}"),
                              token=c.store_token)[0])

    try:
        threads = [threading.Thread(target=order, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(statuses) == [201] * cap + [429] * (n - cap), statuses
    finally:
        c.servers[0].stop()
        c.db.close()
