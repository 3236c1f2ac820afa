"""The demo's order desk: orders go to central and come back to the store as status changes.

After the kiosk's shopper paid, ``vitrine demo`` follows that order to central
(placed, then paid: the store's outbox rows, sent by the forwarder), moves it on
as central's order desk would ("preparing": the admin credential), and places a
web click & collect order for pickup in the store, paid on the web shop (the
``web`` channel credential). The edge pulls its order changes (``sync_orders_s``,
short in the demo: it runs no push bridge) and prints what it applied
(:func:`print_edge_changes`, the sync client's ``on_orders``), so the log shows
the kiosk's order coming back as a status change and the web order arriving in
the store's pickup queue.
"""

from __future__ import annotations

import threading
import time
import urllib.error
from collections.abc import Callable
from typing import Any

from vitrine.demo_kiosk import DemoCentral

Say = Callable[[str, str], None]


def print_edge_changes(say: Say) -> Callable[[list[dict[str, Any]]], None]:
    """An ``on_orders`` hook for the edge's sync client: one line per applied change."""

    def on_orders(changes: list[dict[str, Any]]) -> None:
        for c in changes:
            what = (f"arrived ({c['channel']}, {c['status']}): in the pickup queue"
                    if c["previous"] is None else f"{c['previous']} -> {c['status']}")
            say("EDGE", f"order {c['order_id'][:8]} {what}  [from central, {c['changed_by']}]")

    return on_orders


def _wait_status(central: DemoCentral, order_id: str, status: str, timeout: float,
                 stop: threading.Event) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            order = central.api("GET", f"/api/v1/orders/{order_id}", central.admin_token)
        except urllib.error.HTTPError:
            order = None
        if order is not None and order["status"] == status:
            return order
        if stop.wait(0.5):
            return None
    return None


def order_desk(central: DemoCentral, store_id: str, kiosk_order_id: str | None, gtin: str,
               price_cents: int, say: Say, stop: threading.Event, timeout: float = 20.0
               ) -> None:
    """Move the kiosk's order on at central, and place and pay a web order for pickup.

    The demo may end meanwhile (``stop``, then central stops): that ends the desk
    quietly, it is not a fault."""
    try:
        _order_desk(central, store_id, kiosk_order_id, gtin, price_cents, say, stop, timeout)
    except (urllib.error.URLError, OSError) as exc:
        if not stop.is_set():
            say("CENTRAL", f"order desk: central did not answer ({exc})")


def _order_desk(central: DemoCentral, store_id: str, kiosk_order_id: str | None, gtin: str,
                price_cents: int, say: Say, stop: threading.Event, timeout: float) -> None:
    from central.credentials import issue

    web = issue(central.db, "channel", "web")  # now: central is surely up
    if kiosk_order_id is not None:
        order = _wait_status(central, kiosk_order_id, "paid", timeout, stop)
        if stop.is_set():
            return
        if order is None:
            say("CENTRAL", f"order {kiosk_order_id[:8]} not paid at central yet (the "
                           "forwarder keeps trying)")
        else:
            paid = order["history"][-1]
            say("CENTRAL", f"order {kiosk_order_id[:8]} paid  [{paid['changed_by']}, "
                           f"{paid['actor']}]")
            central.api("POST", f"/api/v1/orders/{kiosk_order_id}/status", central.admin_token,
                        {"status": "preparing", "change_id": f"desk-{kiosk_order_id}",
                         "actor": "order-desk"})
            say("CENTRAL", f"order desk: order {kiosk_order_id[:8]} -> preparing (sent back "
                           f"to {store_id})")
    if stop.is_set():
        return
    order_id = f"web-{int(time.time())}"
    placed = central.api("POST", "/api/v1/orders", web, {
        "order_id": order_id, "channel": "web", "customer_id": None,
        "created_at": time.time(),
        "fulfilment": {"type": "click_and_collect", "store_id": store_id},
        "lines": [{"gtin": gtin, "quantity": 1, "unit_price_cents": price_cents}]})
    central.api("POST", f"/api/v1/orders/{order_id}/status", web,
                {"status": "paid", "change_id": f"{order_id}-paid", "actor": "checkout"})
    say("CENTRAL", f"web shop: order {order_id[:8]} for pickup in {store_id}, paid online, "
                   f"pickup code {placed['pickup_code']}")
