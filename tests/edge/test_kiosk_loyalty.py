"""One loyalty balance and one consent across store and web, on real parts.

The edge's writer core answers the kiosk's requests (the kit's real router, real
SQLite), the real forwarder drains the real outbox into a real central (SQLite
and PostgreSQL: every test taking ``central`` runs on both), the real profile
prefetcher reads central over HTTP. The last test adds Mosquitto: a kiosk device
session, a card tap, an order with points and a web change, end to end.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.credentials import issue
from contract.commands import CustomerIdentified
from contract.requests import RequestError
from contract.session import DeviceSession
from edge import kiosk_loyalty
from edge.config import load_config
from edge.db import connect, migrate
from edge.forwarder import Forwarder
from edge.kiosk_profiles import CentralProfiles, ProfilePrefetcher
from edge.node import EdgeNode
from kiosk.flow import PROFILE_REFRESH_S, KioskFlow
from kiosk.payment import SimulatedPayments
from kiosk.store import StoreClient
from tests.central.conftest import Central, channel_event, grant

from .conftest import GTIN, GTIN_2, LAYOUT, LOYALTY_KEY, query, wait_until
from .store_harness import CARD_UID, STORE, StoreHarness, card_ndef

KIOSK = "kiosk-01"
OTHER_KIOSK = "kiosk-02"
LAYOUT_2 = {**LAYOUT, "devices": [*LAYOUT["devices"],
                                  {"id": OTHER_KIOSK, "kind": "kiosk", "zone": "shoes"}]}


class Store(StoreHarness):
    """An edge linked to a real central: writer core, real forwarder, real prefetcher."""

    def __init__(self, tmp_path: Path, central: Central) -> None:
        super().__init__(tmp_path, layout=LAYOUT_2, central_url=central.url)
        self.central = central
        self.token = issue(central.db, "store", STORE)
        self.web = issue(central.db, "channel", "web")
        self.forwarder = Forwarder(self.cfg.db_path, central.url, self.token, lanes=1)
        self.profiles = ProfilePrefetcher(self.cfg.db_path, CentralProfiles(
            central.url, self.token, STORE))

    def close(self) -> None:
        self.forwarder.close()
        super().close()

    def request(self, op: str, body: dict[str, Any], *, timeout: float = 5.0,
                request_id: str | None = None) -> dict[str, Any]:
        """The kiosk's requester (``kiosk/store.py``), answered by this writer core."""
        return self.ask(KIOSK, op, body, request_id)

    def drain(self) -> None:
        """Forward until nothing moves (central answers everything on the first try)."""
        while self.forwarder.drain_once():
            pass

    def web_points(self, customer: str, points: int, ref: str) -> dict[str, Any]:
        status, body = self.central.post_events([channel_event(
            "loyalty", "web", customer_id=customer, points=points,
            reference={"kind": "purchase", "id": ref})], token=self.web)
        assert status == 200, body
        return body

    def arrive(self, customer: str, device: str = KIOSK) -> str:
        """A card tap at the kiosk; central hears of it; the edge fetches the summary."""
        session = self.identify(device, customer)
        self.drain()
        assert self.profiles.fetch_now(self.conn, customer)
        return session

    def balance(self, customer: str) -> int:
        return self.central.profile(customer)["loyalty_points"]

    def ledger(self, customer: str) -> list[tuple[str, str, int]]:
        rows = self.central.db.run(lambda tx: tx.all(
            "SELECT ref_kind, ref_id, points FROM loyalty_ledger WHERE customer_id = ? "
            "ORDER BY entry_id", (customer,)), write=False)
        return [(r["ref_kind"], r["ref_id"], int(r["points"])) for r in rows]

    def order(self, session: str, client_id: str, spend: int = 0, device: str = KIOSK,
              gtin: str = GTIN, **extra: Any) -> dict[str, Any]:
        body = {"client_order_id": client_id, "session_id": session,
                "lines": [{"gtin": gtin, "quantity": 1}],
                "fulfilment": {"type": "click_and_collect"}, **extra}
        if spend:
            body["spend_points"] = spend
        return self.ask(device, "order_place", body)

    def pay(self, order_id: str, device: str = KIOSK) -> dict[str, Any]:
        return self.ask(device, "order_pay", {"order_id": order_id, "payment_ref": "pay-1",
                                              "outcome": "approved"})

    def profile(self, session: str, device: str = KIOSK) -> dict[str, Any]:
        return self.ask(device, "kiosk_profile", {"session_id": session})


@pytest.fixture
def store(tmp_path: Path, central: Central) -> Iterator[Store]:
    s = Store(tmp_path, central)
    grant(central, "cust-anna")  # tracking consent given on the web
    s.web_points("cust-anna", 1500, "web-1")
    yield s
    s.close()


def test_points_spent_and_earned_at_the_kiosk_reach_centrals_ledger_once(store: Store):
    session = store.arrive("cust-anna")
    assert store.profile(session)["points"] == 1500
    # 89.99 EUR, 500 points off: 84.99 to pay, 84 points earned on it (1 per euro).
    placed = store.order(session, "c1", spend=500)
    assert (placed["total_cents"], placed["points_spent"], placed["points_earned"]) == (
        8499, 500, 84)
    assert placed["points_state"] == "held"
    shown = store.profile(session)
    assert shown["points"] == 1000 and shown["provisional"] is True
    store.drain()  # the order reaches central; its points wait for the payment
    assert store.balance("cust-anna") == 1500
    paid = store.pay(placed["order_id"])
    assert paid["points_state"] == "pending"
    store.drain()
    assert store.balance("cust-anna") == 1500 - 500 + 84
    assert sorted(store.ledger("cust-anna")) == sorted([
        ("purchase", "web-1", 1500), ("order", placed["order_id"], -500),
        ("order", placed["order_id"], 84)])
    status = store.ask(KIOSK, "order_status", {"order_id": placed["order_id"]})
    assert status["points_state"] == "posted"
    # Before the next fetch the cache still says 1500: the edge applies what central took.
    assert store.profile(session)["points"] == 1084
    assert store.profiles.fetch_now(store.conn, "cust-anna")
    assert store.profile(session) | {"recent": None} == store.profile(session) | {
        "recent": None, "points": 1084, "provisional": False}

    # Replays change nothing: the payment report again, the outbox rows again.
    store.pay(placed["order_id"])
    store.conn.execute("UPDATE outbox SET sent_at = NULL")
    store.drain()
    assert store.balance("cust-anna") == 1084 and len(store.ledger("cust-anna")) == 3
    assert kiosk_loyalty.summary(store.conn) == {"posted": 2}


def test_a_spend_central_refuses_is_reported_to_the_store(store: Store):
    """Central unreachable while the shopper spends, the points go on the web meanwhile:
    the order stands, central refuses the debit, the store is told; never negative."""
    session = store.arrive("cust-anna")
    placed = store.order(session, "c1", spend=1200)
    assert store.pay(placed["order_id"])["points_state"] == "pending"
    shown = store.profile(session)
    assert shown["points"] == 300 and shown["provisional"] is True
    store.central.post_events([channel_event(  # spent on the web before the store syncs
        "loyalty", "web", customer_id="cust-anna", points=-1000,
        reference={"kind": "purchase", "id": "web-2"})], token=store.web)
    store.drain()
    status = store.ask(KIOSK, "order_status", {"order_id": placed["order_id"]})
    assert status["status"] == "paid" and status["points_state"] == "refused"
    assert "exceeds the customer's balance" in status["points_refused"]
    earned = placed["points_earned"]
    assert store.balance("cust-anna") == 500 + earned  # the credit went through
    assert kiosk_loyalty.summary(store.conn) == {"posted": 1, "refused": 1}
    assert store.profiles.fetch_now(store.conn, "cust-anna")
    assert store.profile(session)["points"] == 500 + earned


def test_a_ledger_entry_waits_until_its_order_reached_central(store: Store):
    session = store.arrive("cust-anna")
    placed = store.order(session, "c1", spend=100)
    store.pay(placed["order_id"])
    assert store.forwarder.send_events() == 0  # the order is not at central yet
    assert store.conn.execute("SELECT count(*) FROM outbox WHERE kind = 'loyalty' "
                              "AND sent_at IS NULL").fetchone()[0] == 2
    assert store.forwarder.send_orders() == 2  # the order, then its "paid"
    assert store.forwarder.send_events() == 2
    assert store.balance("cust-anna") == 1500 - 100 + placed["points_earned"]


def test_paid_in_full_with_points_posts_at_once(store: Store):
    session = store.arrive("cust-anna")
    store.web_points("cust-anna", 5000, "web-3")
    assert store.profiles.fetch_now(store.conn, "cust-anna")
    placed = store.order(session, "c1", spend=9999, gtin=GTIN_2)  # capped at 39.99 EUR
    assert (placed["total_cents"], placed["points_spent"], placed["points_earned"]) == (
        0, 3999, 0)
    assert placed["points_state"] == "pending"  # nothing for the payment terminal
    store.drain()
    assert store.balance("cust-anna") == 6500 - 3999


def test_a_kiosk_cannot_credit_or_read_another_customer(store: Store):
    grant(store.central, "cust-bob")
    anna = store.arrive("cust-anna")
    bob = store.arrive("cust-bob", OTHER_KIOSK)
    for op, body in [("kiosk_profile", {"session_id": bob}),
                     ("kiosk_consent", {"session_id": bob, "granted": False}),
                     ("order_place", {"client_order_id": "x", "session_id": bob,
                                      "lines": [{"gtin": GTIN, "quantity": 1}],
                                      "fulfilment": {"type": "click_and_collect"}})]:
        with pytest.raises(RequestError) as err:
            store.ask(KIOSK, op, body)
        assert err.value.code == "forbidden", op
    # The kiosk names no customer and no amount: such fields are refused outright.
    for extra in ({"customer_id": "cust-bob"}, {"points_earned": 5000},
                  {"total_cents": 1}):
        with pytest.raises(RequestError) as err:
            store.order(anna, "y", **extra)
        assert err.value.code == "bad_request", extra
    placed = store.order(anna, "c1", spend=10)
    store.pay(placed["order_id"])
    with pytest.raises(RequestError):  # kiosk-02 cannot pay or read kiosk-01's order
        store.pay(placed["order_id"], device=OTHER_KIOSK)
    store.drain()
    assert store.ledger("cust-bob") == []
    assert store.balance("cust-anna") == 1500 - 10 + placed["points_earned"]
    # After "I'm done" the session is nobody's: no profile, no order on it.
    store.ask(KIOSK, "session_end", {"reason": "done"})
    with pytest.raises(RequestError) as err:
        store.order(anna, "c2", spend=10)
    assert err.value.code == "session_ended"


def test_consent_at_the_kiosk_reaches_central_and_a_withdrawal_always_wins(store: Store):
    store.central.post_events([channel_event("interest", "web", customer_id="cust-anna",
                                             session_id="w1", gtin=GTIN_2)],
                              token=store.web)
    session = store.arrive("cust-anna")
    assert [p["gtin"] for p in store.profile(session)["recent"]] == [GTIN_2]
    # Withdrawn at the kiosk: gone from the very next reply, before central hears of it.
    store.ask(KIOSK, "kiosk_consent", {"session_id": session, "granted": False})
    shown = store.profile(session)
    assert shown["consent"] is False and shown["recent"] == []
    store.drain()
    consent = store.central.profile("cust-anna")["consents"]["tracking"]
    assert consent["granted"] is False and consent["source"] == "kiosk"
    store.profiles.fetch_now(store.conn, "cust-anna")  # central: 404 now (no consent)
    assert store.profile(session)["recent"] == []

    # Given again at the kiosk: the customer's own act, central takes it and the store
    # may read the summary again without another tap (the history before the withdrawal
    # was anonymised by it; what follows is theirs again).
    store.ask(KIOSK, "kiosk_consent", {"session_id": session, "granted": True})
    store.drain()
    assert store.central.profile("cust-anna")["consents"]["tracking"]["granted"] is True
    store.central.post_events([channel_event("interest", "web", customer_id="cust-anna",
                                             session_id="w2", gtin=GTIN)], token=store.web)
    assert store.profiles.fetch_now(store.conn, "cust-anna")
    shown = store.profile(session)
    assert shown["consent"] is True and [p["gtin"] for p in shown["recent"]] == [GTIN]

    # Withdrawn in the app: a later kiosk grant does not undo it, at central or here.
    status, _ = store.central.api("PUT", "/api/v1/customers/cust-anna/consents",
                                  {"tracking": False}, token=issue(store.central.db,
                                                                   "channel", "app"))
    assert status == 200
    store.profiles.fetch_now(store.conn, "cust-anna")
    assert store.profile(session)["consent"] is False
    store.ask(KIOSK, "kiosk_consent", {"session_id": session, "granted": True})
    store.drain()
    assert store.central.profile("cust-anna")["consents"]["tracking"]["granted"] is False
    store.profiles.fetch_now(store.conn, "cust-anna")
    shown = store.profile(session)
    assert shown["consent"] is False and shown["recent"] == []


def test_an_erasure_removes_the_kiosk_ledger_rows_at_the_edge(store: Store):
    from edge.erasure import erase_customer

    session = store.arrive("cust-anna")
    placed = store.order(session, "c1", spend=100)
    store.pay(placed["order_id"])
    assert erase_customer(store.conn, "cust-anna") > 0
    assert store.conn.execute("SELECT count(*) FROM kiosk_loyalty").fetchone()[0] == 0
    assert store.conn.execute("SELECT count(*) FROM outbox WHERE kind IN ('loyalty', "
                              "'consent')").fetchone()[0] == 0


def test_a_member_without_tracking_consent_sees_their_points_and_nothing_else(store: Store):
    store.web_points("cust-zoe", 700, "web-z")  # never consented to tracking
    session = store.arrive("cust-zoe")
    shown = store.profile(session)
    assert (shown["points"], shown["consent"], shown["recent"]) == (700, False, [])
    placed = store.order(session, "c1", spend=200)
    store.pay(placed["order_id"])
    store.drain()
    assert store.balance("cust-zoe") == 700 - 200 + placed["points_earned"]
    assert store.profiles.fetch_now(store.conn, "cust-zoe")
    assert store.profile(session)["points"] == 500 + placed["points_earned"]
    # Central kept no visit (the presence is anonymous), only the ledger's entries.
    assert {e["kind"] for e in store.central.profile("cust-zoe")["timeline"]} == {"loyalty"}


def test_a_web_change_shows_at_the_kiosk_within_seconds(store: Store, capsys):
    """Points earned on the web while the shopper stands at the kiosk: the prefetcher's
    refresh (every REFRESH_S) and the kiosk's own poll (every PROFILE_REFRESH_S)."""
    session = store.arrive("cust-anna")
    flow = KioskFlow(StoreClient(store), SimulatedPayments())
    flow.customer_identified(session)
    assert flow.shopper.points == 1500
    store.profiles.start()
    try:
        t0 = time.monotonic()
        store.web_points("cust-anna", 250, "web-live")

        def seen() -> bool:
            flow.tick()  # the app calls it every second; more often here to measure
            return flow.shopper.points == 1750

        wait_until(seen, timeout=30, interval=0.05)
        delay = time.monotonic() - t0
    finally:
        store.profiles.stop()
    with capsys.disabled():
        print(f"\nweb change -> kiosk: {delay:.2f} s (edge refresh {store.profiles.refresh_s}"
              f" s + kiosk poll {PROFILE_REFRESH_S} s)")
    # Bounded by the two cadences plus a lookup; generous for a loaded 2-core machine.
    assert delay < store.profiles.refresh_s + PROFILE_REFRESH_S + 6


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    db = connect(tmp_path_factory.mktemp("avail") / "e.db")
    migrate(db)
    yield db.conn
    db.conn.close()


@settings(max_examples=200, deadline=None)
@given(cached=st.integers(0, 10_000), fetched=st.floats(0, 2000),
       entries=st.lists(st.tuples(st.sampled_from(["debit", "credit"]),
                                  st.sampled_from(["held", "pending", "posted", "refused"]),
                                  st.integers(1, 5000), st.floats(0, 4000)), max_size=12))
def test_available_points_are_never_negative_and_count_only_what_central_lacks(
        ledger_db, cached, fetched, entries):
    conn = ledger_db
    conn.execute("DELETE FROM kiosk_loyalty")
    for n, (direction, state, points, at) in enumerate(entries):
        conn.execute("INSERT INTO kiosk_loyalty VALUES (?, ?, 'c', ?, ?, ?, NULL, ?, ?)",
                     (f"o{n}", direction, points, f"e{n}", state, at, at))
    now = 3000.0
    points, provisional = kiosk_loyalty.available(conn, "c", cached, fetched, now)
    live = [e for e in entries if not (e[1] == "held" and e[3] < now - kiosk_loyalty.HOLD_TTL_S)]
    expected = cached
    for direction, state, pts, at in live:
        if state in ("held", "pending") and direction == "debit":
            expected -= pts
        elif state == "posted" and at >= fetched:
            expected += pts if direction == "credit" else -pts
    assert points == max(0, expected) and points >= 0
    assert provisional == any(s in ("held", "pending") for _, s, _, _ in live)


def test_end_to_end_over_mosquitto(broker, tmp_path: Path, central: Central):
    """A card tap on a kiosk device, an order paid with points, a web credit: the kiosk
    sees central's balance, central's ledger gets the kiosk's entries once."""
    token = issue(central.db, "store", STORE)
    web = issue(central.db, "channel", "web")
    grant(central, "cust-anna")
    central.post_events([channel_event("loyalty", "web", customer_id="cust-anna", points=900,
                                       reference={"kind": "purchase", "id": "w1"})], token=web)
    layout_file = tmp_path / "layout.json"
    layout_file.write_text(json.dumps(LAYOUT))
    broker.add_many([(d["id"], d["kind"]) for d in LAYOUT["devices"]])
    cfg = load_config(env={}, store_id=STORE, db_path=tmp_path / "edge.db",
                      mqtt_port=broker.port, mqtt_password="edge-pw",
                      loyalty_keys="k1:" + LOYALTY_KEY.hex(), layout_path=layout_file,
                      central_url=central.url, store_token=token, panel_port=0)
    node = EdgeNode(cfg).start()
    session = DeviceSession("127.0.0.1", broker.port, STORE, KIOSK, f"{KIOSK}-pw",
                            kind="kiosk")
    flow = KioskFlow(StoreClient(session), SimulatedPayments(), publisher=session)
    # Commands arrive on the session's thread; like the app (Clock.schedule_once), the
    # flow handles them on its own thread, which may then wait for replies.
    identified: queue.SimpleQueue[str] = queue.SimpleQueue()
    session.on_command(lambda cmd: identified.put(cmd.session_id)
                       if isinstance(cmd, CustomerIdentified) else None)
    assert session.start(wait=10)
    try:
        flow.card_read(CARD_UID, card_ndef("cust-anna"))
        flow.customer_identified(identified.get(timeout=10))

        def greeted() -> bool:
            flow.tick()
            return flow.shopper.points == 900

        wait_until(greeted, timeout=20, interval=0.1)
        flow.start()
        flow.open_product(GTIN)
        flow.add_to_cart()
        flow.set_use_points(True)
        assert flow.checkout() is True
        order = flow.shopper.order
        assert order["points_spent"] == 900 and order["points_state"] == "pending"
        expected = order["points_earned"]  # 900 spent of 900, then earned on 80.99 EUR
        wait_until(lambda: central.profile("cust-anna")["loyalty_points"] == expected,
                   timeout=20)
        wait_until(lambda: query(cfg.db_path, "SELECT state FROM kiosk_loyalty") == [
            ("posted",), ("posted",)])
        central.post_events([channel_event("loyalty", "web", customer_id="cust-anna",
                                           points=40, reference={"kind": "purchase",
                                                                 "id": "w2"})], token=web)

        def updated() -> bool:
            flow.tick()
            return flow.shopper.points == expected + 40

        wait_until(updated, timeout=20, interval=0.1)
    finally:
        session.close()
        node.stop()


profile_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["gtin", "products", "granted", "tracking", "x"]), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["loyalty_points", "consents", "tracking", "timeline",
                                        "interests", "customer_id"]), profile_docs))
def test_whatever_central_answers_the_summary_parser_gives_a_sane_triple(doc):
    from edge.kiosk_profiles import summary

    points, consent, recent = summary(doc)
    assert isinstance(points, int) and points >= 0 and isinstance(consent, bool)
    assert len(recent) <= 10 and all(isinstance(g, str) for g in recent)
    assert consent or recent == []
