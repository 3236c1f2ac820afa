"""Orders: durable, idempotent on order id, routed to the fulfilling store."""

from __future__ import annotations

import time
from typing import Any

from central.credentials import issue
from tests.central.conftest import STORE, Central


def order(order_id: str, fulfilment: dict[str, Any], channel: str = "web") -> dict[str, Any]:
    return {"order_id": order_id, "channel": channel, "customer_id": "c1",
            "created_at": time.time(), "fulfilment": fulfilment,
            "lines": [{"gtin": "00000000000017", "quantity": 2, "unit_price_cents": 4999}]}


def test_click_and_collect_is_routed_and_idempotent(central: Central) -> None:
    web = issue(central.db, "channel", "web")
    o = order("o-1", {"type": "click_and_collect", "store_id": STORE})
    status, body = central.api("POST", "/api/v1/orders", o, token=web)
    assert status == 201 and body["store_id"] == STORE and body["status"] == "accepted"
    status, again = central.api("POST", "/api/v1/orders", o, token=web)
    assert status == 200 and again["status"] == "duplicate" and again["seq"] == body["seq"]
    changed = {**o, "lines": [{"gtin": "00000000000017", "quantity": 3}]}
    assert central.api("POST", "/api/v1/orders", changed, token=web)[0] == 409
    assert central.count("SELECT COUNT(*) AS n FROM orders") == 1
    status, feed = central.api("GET", f"/api/v1/stores/{STORE}/orders?since=0",
                               token=central.store_token)
    assert status == 200
    assert [x["order_id"] for x in feed["orders"]] == ["o-1"]
    assert feed["orders"][0]["order"]["lines"][0]["quantity"] == 2


def test_home_delivery_goes_to_named_store_or_web_warehouse(central: Central) -> None:
    web = issue(central.db, "channel", "web")
    addr = {"line1": "1 rue X", "city": "Paris"}
    _, a = central.api("POST", "/api/v1/orders",
                       order("o-2", {"type": "home_delivery", "address": addr}), token=web)
    _, b = central.api("POST", "/api/v1/orders", order(
        "o-3", {"type": "home_delivery", "address": addr, "store_id": "store-b"}), token=web)
    assert (a["store_id"], b["store_id"]) == ("web-warehouse", "store-b")


def test_kiosk_orders_from_store_and_validation(central: Central) -> None:
    o = order("o-4", {"type": "click_and_collect", "store_id": STORE}, channel="kiosk")
    assert central.api("POST", "/api/v1/orders", o, token=central.store_token)[0] == 201
    web_order = order("o-5", {"type": "click_and_collect", "store_id": STORE})
    assert central.api("POST", "/api/v1/orders", web_order, token=central.store_token)[0] == 403
    for bad in ({**o, "order_id": "o-6", "lines": []},
                {**o, "order_id": "o-7", "fulfilment": {"type": "click_and_collect"}},
                {**o, "order_id": "o-8", "fulfilment": {"type": "home_delivery"}}):
        status, body = central.api("POST", "/api/v1/orders", bad, token=central.store_token)
        assert status == 400, body
    assert central.count("SELECT COUNT(*) AS n FROM orders") == 1


def test_orders_survive_a_worker_restart(central: Central) -> None:
    from tests.central.conftest import make_central

    web = issue(central.db, "channel", "web")
    o = order("o-9", {"type": "click_and_collect", "store_id": STORE})
    assert central.api("POST", "/api/v1/orders", o, token=web)[0] == 201
    central.servers[0].stop()
    central.db.close()
    fresh = make_central(central.db_config)
    central.servers, central.app = fresh.servers, fresh.app
    status, feed = fresh.api("GET", f"/api/v1/stores/{STORE}/orders")
    assert [x["order_id"] for x in feed["orders"]] == ["o-9"]
