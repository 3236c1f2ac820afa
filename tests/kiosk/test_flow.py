"""The kiosk's logic without a window, against the edge's real kiosk service and database."""

from __future__ import annotations

import base64
import dataclasses
import sqlite3

import pytest

from contract.ndef_codec import encode_uri
from kiosk.flow import KioskFlow, ShopperState
from kiosk.i18n import LANGUAGES, STRINGS, money, points_line, tr
from kiosk.payment import SimulatedPayments
from kiosk.store import StoreClient
from tests.edge.conftest import GTIN, GTIN_2


def _orders(db_path) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT order_id, status, total_cents FROM kiosk_orders").fetchall()
    finally:
        conn.close()


def test_every_message_exists_in_every_language():
    for key, texts in STRINGS.items():
        assert set(texts) == set(LANGUAGES), key
        assert all(t.strip() for t in texts.values()), key
    assert money(1250, "fr") == "12,50 €" and money(1250, "en") == "€12.50"
    assert tr("points", "fr", points=3) == "3 points fidélité"


def test_points_line_says_when_the_balance_awaits_central():
    assert points_line(120, False, "en") == "120 loyalty points"
    assert points_line(120, True, "en") == "120 loyalty points (awaiting confirmation)"
    assert points_line(120, True, "fr") == "120 points fidélité (en attente de confirmation)"
    assert points_line(None, True, "en") == "Points unavailable right now"


def test_anonymous_shopper_finds_orders_and_gets_a_pickup_code(flow, store_db, payments):
    assert flow.screen == "attract"
    flow.start()
    assert flow.screen == "search" and {"category": "kitchen", "count": 1} in flow.categories
    for typed in ("k", "ke", "ket", "kett"):
        flow.type_query(typed)
    assert [r["gtin"] for r in flow.shopper.results] == [GTIN_2]
    flow.open_product(GTIN)
    assert flow.screen == "product"
    assert flow.shopper.product["stock"] == {"this_store": 3, "other_stores": {"store-lyon": 7},
                                             "web_warehouse": 50}
    flow.add_to_cart()
    flow.add_to_cart()
    assert flow.screen == "cart" and flow.cart_count == 2
    assert flow.checkout() is True
    assert flow.screen == "pickup"
    order = flow.shopper.order
    assert order["status"] == "paid" and order["total_cents"] == 2 * 8999
    assert flow.pickup_payload == f"VITRINE-PICKUP:{order['order_id']}:{order['pickup_code']}"
    assert payments.total_charged == 2 * 8999 and len(payments.charges) == 1
    assert _orders(store_db) == [(order["order_id"], "paid", 2 * 8999)]


def test_identified_shopper_is_greeted_spends_points_and_consent_is_theirs(flow, requester,
                                                                          payments):
    sess_1 = requester.identify_at_kiosk("cust-1")
    flow.customer_identified(sess_1)
    assert flow.screen == "greeting"
    assert flow.shopper.points == 800 and flow.shopper.consent
    assert [p["gtin"] for p in flow.shopper.recent] == [GTIN]
    flow.set_consent(False)
    assert flow.shopper.consent is False and flow.shopper.recent == []
    flow.open_product(GTIN_2)
    flow.add_to_cart()
    flow.set_use_points(True)
    assert flow.checkout()
    assert flow.shopper.order["points_spent"] == 800
    assert payments.total_charged == 3999 - 800


def test_im_done_ends_the_session_at_the_edge_and_wipes_the_screen(flow, store_db, requester):
    sess_2 = requester.identify_at_kiosk("cust-2")
    flow.customer_identified(sess_2)
    flow.type_query("kettle")
    flow.open_product(GTIN_2)
    flow.add_to_cart()
    flow.done()
    assert flow.screen == "attract"
    assert dataclasses.asdict(flow.shopper) == dataclasses.asdict(ShopperState())
    # the edge refuses that session from now on: no later tap is that customer's
    with pytest.raises(Exception) as err:
        requester.request("kiosk_profile", {"session_id": sess_2})
    assert err.value.code == "session_ended"


def test_inactivity_ends_the_session(flow, requester, clock):
    sess_3 = requester.identify_at_kiosk("cust-3")
    flow.customer_identified(sess_3)
    clock.now += 29
    assert flow.tick() is False and flow.screen == "greeting"
    flow.type_query("tr")  # a touch restarts the countdown
    clock.now += 29
    assert flow.tick() is False
    clock.now += 1.5
    assert flow.tick() is True
    assert flow.screen == "attract" and flow.shopper.session_id is None


def test_another_shopper_identifying_replaces_the_first(flow, requester):
    flow.start()
    flow.open_product(GTIN)
    flow.add_to_cart()  # browsing anonymously, then identifying: the cart stays theirs
    sess_a = requester.identify_at_kiosk("cust-a")
    flow.customer_identified(sess_a)
    assert flow.shopper.identified and flow.cart_count == 1
    sess_b = requester.identify_at_kiosk("cust-b")  # someone else taps their card
    flow.customer_identified(sess_b)
    assert flow.shopper.session_id == sess_b and flow.shopper.cart == {}
    assert flow.screen == "greeting"


@pytest.mark.parametrize("script, charged_calls", [
    (["timeout_after_charge"], 2),  # answer lost after charging: the retry finds the charge
    (["timeout"], 2),
])
def test_payment_timeout_never_charges_twice(requester, store_db, clock, script, charged_calls):
    payments = SimulatedPayments(script)
    flow = KioskFlow(StoreClient(requester), payments, clock=clock)
    flow.start()
    flow.open_product(GTIN_2)
    flow.add_to_cart()
    assert flow.checkout()
    assert len(payments.charges) == 1 and payments.total_charged == 3999
    assert payments.calls == charged_calls


def test_terminal_silent_twice_then_retry_is_the_same_order_and_charge(requester, store_db,
                                                                       clock):
    payments = SimulatedPayments(["timeout", "timeout_after_charge"])
    flow = KioskFlow(StoreClient(requester), payments, clock=clock)
    flow.start()
    flow.open_product(GTIN_2)
    flow.add_to_cart()
    assert flow.checkout() is False
    assert flow.message.key == "payment_timeout" and flow.screen == "cart"
    assert flow.checkout() is True  # the shopper taps "Pay" again
    assert flow.checkout() is True  # and once more, a double tap
    assert len(_orders(store_db)) == 1 and payments.total_charged == 3999


def test_declined_payment_charges_nothing_then_another_try_pays(requester, store_db, clock):
    payments = SimulatedPayments(["declined"])
    flow = KioskFlow(StoreClient(requester), payments, clock=clock)
    flow.start()
    flow.open_product(GTIN_2)
    flow.add_to_cart()
    assert flow.checkout() is False
    assert flow.message.key == "payment_declined"
    assert _orders(store_db)[0][1] == "payment_declined" and payments.total_charged == 0
    assert flow.checkout() is True
    assert _orders(store_db)[0][1] == "paid" and payments.total_charged == 3999


def test_edge_unreachable_takes_no_money(flow, requester, payments):
    flow.start()
    flow.open_product(GTIN_2)
    flow.add_to_cart()
    requester.down = True
    assert flow.checkout() is False
    assert flow.message.key == "store_unreachable" and flow.message.error
    assert payments.calls == 0
    assert "No payment was taken" in tr(flow.message.key, "en")
    requester.down = False
    assert flow.checkout() is True


def test_shelf_tag_tapped_at_the_kiosk_opens_the_product_and_goes_to_the_edge(flow, outbox):
    ndef = base64.b64encode(encode_uri(f"https://id.gs1.org/01/{GTIN_2}")).decode()
    flow.card_read("04a1b2c3d4e5f6", ndef)
    assert flow.screen == "product" and flow.shopper.product["gtin"] == GTIN_2
    [(channel, payload)] = outbox.sent
    assert channel == "nfc" and payload["uid"] == "04a1b2c3d4e5f6" and payload["ndef"] == ndef


def test_garbage_tag_opens_nothing(flow, outbox):
    flow.card_read("04a1b2c3d4e5f6", "!!not base64!!")
    assert flow.screen == "attract" and len(outbox.sent) == 1


def test_profile_central_never_delivers_the_greeting_shows_no_points(tmp_path, clock):
    from .conftest import Central, InProcessRequester

    # an edge linked to a central that never answers: its profile stays "pending"
    req = InProcessRequester(tmp_path, Central(), central_url="http://127.0.0.1:9")
    try:
        flow = KioskFlow(StoreClient(req), SimulatedPayments(), clock=clock)
        session_id = req.identify("kiosk-01", "cust-9")  # no prefetch: central is silent
        flow.customer_identified(session_id)
        assert flow.screen == "greeting" and flow.shopper.profile_pending
        for _ in range(300):
            flow.refresh_profile()
        assert not flow.shopper.profile_pending and flow.shopper.points is None
        asked = req.calls.count("kiosk_profile")
        assert 2 <= asked <= 122  # asked again a bounded number of times, then gave up
    finally:
        req.close()


def test_language_switch(flow):
    assert flow.lang == "fr"
    flow.toggle_lang()
    assert flow.lang == "en"
    with pytest.raises(ValueError):
        flow.set_lang("de")
