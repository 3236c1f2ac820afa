"""The edge's kiosk ops on a real edge database: search, product, profile, orders, sessions.

Sessions are opened the way the pipeline opens them (a ``sessions`` row for the kiosk
device); the full path, a card tap at a kiosk through Mosquitto and the edge, is in
``tests/kiosk/test_ui.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.kiosk_ops import KIOSK_OP_NAMES
from contract.requests import ERROR_CODES, RequestError
from edge.db import connect
from edge.kiosk_profiles import ProfilePrefetcher

from .conftest import GTIN, GTIN_2, LAYOUT
from .store_harness import STORE, StoreHarness

KIOSK = "kiosk-01"
OTHER_KIOSK = "kiosk-02"


class FakeCentral:
    """Central's profile endpoint, as the edge sees it (or not, when ``down``)."""

    def __init__(self) -> None:
        self.points = 1200
        self.tracking = True
        self.down = False
        self.calls = 0

    def fetch(self, customer_id: str) -> dict[str, Any]:
        self.calls += 1
        if self.down:
            raise OSError("central unreachable")
        return {"customer_id": customer_id, "loyalty_points": self.points,
                "consents": {"tracking": {"granted": self.tracking}},
                "timeline": [{"kind": "interest", "gtin": GTIN_2}]}


LAYOUT_2 = {**LAYOUT, "devices": [*LAYOUT["devices"],
                                  {"id": "kiosk-02", "kind": "kiosk", "zone": "shoes"}]}


@pytest.fixture
def central() -> FakeCentral:
    return FakeCentral()


class Edge(StoreHarness):
    """The edge with its kiosk service on the kit's router; sessions opened by real taps."""

    def __init__(self, tmp_path: Path, central: FakeCentral) -> None:
        super().__init__(tmp_path, layout=LAYOUT_2)
        self.prefetcher = ProfilePrefetcher(self.cfg.db_path, central)
        conn = self.conn
        conn.execute("INSERT INTO sync_prices VALUES (?, ?, 'regular', 0, NULL, 8999, 'EUR', "
                     "NULL, 1)", (STORE, GTIN))
        conn.execute("INSERT INTO sync_prices VALUES ('*', ?, 'promo', 0, NULL, 6999, 'EUR', "
                     "'Soldes', 1)", (GTIN,))
        conn.execute("UPDATE products SET price_cents = 6999 WHERE gtin = ?", (GTIN,))
        now = time.time()
        conn.executemany("INSERT INTO sync_stock VALUES (?, ?, ?, ?)",
                         [(STORE, GTIN, 4, now), ("store-lyon", GTIN, 9, now),
                          ("web-warehouse", GTIN, 120, now)])
        conn.execute("INSERT INTO products (gtin, name, brand, category, price_cents, currency)"
                     " VALUES ('00000000000017', 'Café moulu doux', 'Arôme', 'épicerie', 450,"
                     " 'EUR')")
        self.sessions = {"s-anna": self.identify(KIOSK, "cust-anna"),
                         "s-bob": self.identify(OTHER_KIOSK, "cust-bob")}
        self.prefetcher.fetch_now(conn, "cust-anna")

    def refetch(self, customer_id: str = "cust-anna") -> bool:
        """What happens when the edge tells a kiosk ``customer_identified``."""
        return self.prefetcher.fetch_now(self.conn, customer_id)

    def handle(self, device_id: str, op: str, body: Any) -> dict[str, Any]:
        if isinstance(body, dict) and isinstance(body.get("session_id"), str):
            body = {**body, "session_id": self.sessions.get(body["session_id"],
                                                            body["session_id"])}
        return self.ask(device_id, op, body)

    def end_session(self, device_id: str = KIOSK) -> dict[str, Any]:
        return self.ask(device_id, "session_end", {"reason": "done"})


@pytest.fixture
def service(tmp_path: Path, central: FakeCentral):
    e = Edge(tmp_path, central)
    yield e
    e.close()


@pytest.fixture
def db_path(service: Edge) -> Path:
    return service.cfg.db_path


def order_body(client_id: str = "c1", **extra: Any) -> dict[str, Any]:
    return {"client_order_id": client_id, "session_id": "s-anna",
            "lines": [{"gtin": GTIN, "quantity": 2}, {"gtin": GTIN_2, "quantity": 1}],
            "fulfilment": {"type": "click_and_collect"}, **extra}


# -- search -----------------------------------------------------------------------------
@pytest.mark.parametrize("typed, expected", [
    ("kett", GTIN_2),              # prefix while typing
    ("Kettle", GTIN_2),
    ("ketle", GTIN_2),             # typo
    ("trail sho", GTIN),           # two words, the last one a prefix
    ("cafe", "00000000000017"),    # no accent typed, accented name
    ("CAFÉ MOUL", "00000000000017"),
    ("arome", "00000000000017"),   # brand, accent folded
    ("moulo", "00000000000017"),   # typo in a prefix
])
def test_search_finds_with_prefix_accents_and_typos(service, typed, expected):
    results = service.handle(KIOSK, "kiosk_search", {"q": typed})["results"]
    assert results and results[0]["gtin"] == expected, (typed, results)
    assert results[0]["price_cents"] is not None


def test_search_nothing_for_nonsense_and_category_browse(service):
    assert service.handle(KIOSK, "kiosk_search", {"q": "zzqxw"})["results"] == []
    shoes = service.handle(KIOSK, "kiosk_search", {"q": "", "category": "shoes"})["results"]
    assert [r["gtin"] for r in shoes] == [GTIN]
    cats = service.handle(KIOSK, "kiosk_categories", {})["categories"]
    assert {"category": "épicerie", "count": 1} in cats


def test_search_index_follows_the_products_table(service, db_path):
    assert service.handle(KIOSK, "kiosk_search", {"q": "toaster"})["results"] == []
    conn = connect(db_path).conn
    conn.execute("INSERT INTO products (gtin, name, category, price_cents, currency, updated_at)"
                 " VALUES ('00000000000024', 'Toaster', 'kitchen', 2999, 'EUR', 1)")
    conn.close()
    time.sleep(2.1)  # the index checks the products table at most every 2 s
    got = service.handle(KIOSK, "kiosk_search", {"q": "toast"})["results"]
    assert [r["gtin"] for r in got] == ["00000000000024"]


# -- product ---------------------------------------------------------------------------
def test_product_price_promotion_location_and_stock_everywhere(service):
    p = service.handle(KIOSK, "kiosk_product", {"gtin": GTIN})
    assert p["price_cents"] == 6999
    assert p["promotion"] == {"label": "Soldes", "regular_price_cents": 8999}
    assert p["stock"] == {"this_store": 4, "other_stores": {"store-lyon": 9},
                          "web_warehouse": 120}
    kettle = service.handle(KIOSK, "kiosk_product", {"gtin": GTIN_2})
    assert kettle["location"] == {"zone": "kitchen", "shelf": "K1"}
    assert kettle["promotion"] is None
    with pytest.raises(RequestError) as err:
        service.handle(KIOSK, "kiosk_product", {"gtin": "00000000000000"})
    assert err.value.code == "not_found"


# -- profile and consent ----------------------------------------------------------------------
def test_profile_with_consent_shows_history_and_points(service, central):
    p = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})
    assert p["points"] == 1200 and p["consent"] is True and p["offline"] is False
    assert [r["gtin"] for r in p["recent"]] == [GTIN_2]
    service.handle(KIOSK, "kiosk_wishlist_add", {"session_id": "s-anna", "gtin": GTIN})
    p = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})
    assert [r["gtin"] for r in p["wishlist"]] == [GTIN]


def test_erasure_removes_what_the_kiosk_kept(service):
    from edge.erasure import erase_customer

    service.handle(KIOSK, "kiosk_wishlist_add", {"session_id": "s-anna", "gtin": GTIN})
    assert erase_customer(service.conn, "cust-anna") > 0
    for table in ("customer_cache", "kiosk_wishlist"):
        assert service.conn.execute(f"SELECT count(*) FROM {table} WHERE customer_id = "
                                    "'cust-anna'").fetchone()[0] == 0


def test_profile_without_consent_shows_no_history(service, central):
    central.tracking = False
    service.refetch()
    p = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})
    assert p["points"] == 1200 and p["recent"] == [] and p["wishlist"] == []


def test_consent_withdrawn_at_the_kiosk_hides_history(service, central):
    central.tracking = False
    service.refetch()
    service.handle(KIOSK, "kiosk_consent", {"session_id": "s-anna", "granted": True})
    assert service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})["consent"] is True
    service.handle(KIOSK, "kiosk_consent", {"session_id": "s-anna", "granted": False})
    service.refetch()  # the kiosk's choice stays, whatever central says
    p = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})
    assert p["consent"] is False and p["recent"] == []


def test_profile_from_cache_when_central_is_down(service, central):
    central.down = True
    central.points = 5
    assert service.refetch() is False
    p = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})
    assert p["points"] == 1200  # the cached figure
    assert central.calls == 2


def test_profile_not_fetched_yet(service):
    service.sessions["s-carl"] = service.identify(KIOSK, "cust-carl")
    p = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-carl"})
    # no central link on this edge: nothing is on its way, so not "pending"
    assert p["pending"] is False and p["points"] is None and p["recent"] == []


@pytest.mark.parametrize("device, session, code", [
    (KIOSK, "s-bob", "forbidden"),        # another kiosk's customer
    (OTHER_KIOSK, "s-anna", "forbidden"),
    (KIOSK, "s-nobody", "forbidden"),
    ("nfc-01", "s-anna", "forbidden"),    # not a kiosk at all
])
def test_a_kiosk_reads_only_its_own_shopper(service, device, session, code):
    with pytest.raises(RequestError) as err:
        service.handle(device, "kiosk_profile", {"session_id": session})
    assert err.value.code == code


def test_anonymous_session_has_no_profile(service):
    fresh = service.end_session()["session_id"]
    with pytest.raises(RequestError) as err:
        service.handle(KIOSK, "kiosk_profile", {"session_id": fresh})
    assert err.value.code == "no_customer"


def test_ended_session_is_nobodys(service):
    service.end_session()  # "I'm done": the kiosk's next reads start anonymous
    for op, body in [("kiosk_profile", {"session_id": "s-anna"}),
                     ("order_place", order_body()),
                     ("kiosk_wishlist_add", {"session_id": "s-anna", "gtin": GTIN})]:
        with pytest.raises(RequestError) as err:
            service.handle(KIOSK, op, body)
        assert err.value.code == "session_ended"


# -- orders --------------------------------------------------------------------------------
def _outbox(db_path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    conn = connect(db_path).conn
    try:
        return [(r[0], r[1], json.loads(r[2])) for r in conn.execute(
            "SELECT event_id, kind, payload FROM outbox WHERE kind = 'order' ORDER BY seq")]
    finally:
        conn.close()


def test_order_is_priced_at_the_edge_and_committed_with_its_outbox_row(service, db_path):
    service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})
    reply = service.handle(KIOSK, "order_place", order_body(spend_points=500))
    assert reply["status"] == "placed" and not reply["duplicate"]
    assert reply["total_cents"] == 2 * 6999 + 3999 - 500
    assert reply["points_spent"] == 500 and reply["points_earned"] == reply["total_cents"] // 100
    assert len(reply["pickup_code"]) == 6
    [(event_id, kind, payload)] = _outbox(db_path)
    assert (event_id, kind) == (reply["order_id"], "order")
    assert payload["customer_id"] == "cust-anna" and payload["channel"] == "kiosk"
    assert payload["fulfilment"] == {"type": "click_and_collect", "store_id": STORE}
    assert {(ln["gtin"], ln["unit_price_cents"]) for ln in payload["lines"]} == {
        (GTIN, 6999), (GTIN_2, 3999)}
    # points spent and not yet confirmed by central are not offered again
    assert service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})["points"] == 700


def test_retried_request_never_makes_two_orders(service, db_path):
    first = service.handle(KIOSK, "order_place", order_body("dbl"))
    again = service.handle(KIOSK, "order_place", order_body("dbl"))
    assert again["order_id"] == first["order_id"] and again["duplicate"]
    assert again["pickup_code"] == first["pickup_code"]
    # even with other items or another session: the first order stands, unchanged
    other = service.handle(KIOSK, "order_place", order_body("dbl", session_id=None,
                                                            lines=[{"gtin": GTIN, "quantity": 9}]))
    assert other["order_id"] == first["order_id"] and other["total_cents"] == first["total_cents"]
    assert len(_outbox(db_path)) == 1


def test_same_client_id_from_another_kiosk_is_another_order(service, db_path):
    a = service.handle(KIOSK, "order_place", order_body("same", session_id=None))
    b = service.handle(OTHER_KIOSK, "order_place", order_body("same", session_id=None))
    assert a["order_id"] != b["order_id"]


def test_prices_from_the_kiosk_are_refused_and_points_cannot_go_negative(service):
    body = order_body()
    body["lines"][0]["unit_price_cents"] = 1
    with pytest.raises(RequestError) as err:
        service.handle(KIOSK, "order_place", body)
    assert err.value.code == "bad_request"
    central_points = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})["points"]
    with pytest.raises(RequestError) as err:
        service.handle(KIOSK, "order_place",
                       order_body("p", spend_points=central_points + 1))
    assert err.value.code == "insufficient_points"
    with pytest.raises(RequestError) as err:
        service.handle(KIOSK, "order_place",
                       order_body("anon", session_id=None, spend_points=10))
    assert err.value.code == "no_customer"


def test_a_kiosk_cannot_order_for_another_kiosks_customer(service):
    with pytest.raises(RequestError) as err:
        service.handle(KIOSK, "order_place", order_body(session_id="s-bob"))
    assert err.value.code == "forbidden"


def test_payment_outcome_and_status_are_per_kiosk_and_idempotent(service):
    placed = service.handle(KIOSK, "order_place", order_body())
    oid = placed["order_id"]
    declined = service.handle(KIOSK, "order_pay",
                              {"order_id": oid, "payment_ref": "p1", "outcome": "declined"})
    assert declined["status"] == "payment_declined"
    paid = service.handle(KIOSK, "order_pay",
                          {"order_id": oid, "payment_ref": "p2", "outcome": "approved"})
    assert paid["status"] == "paid"
    again = service.handle(KIOSK, "order_pay",
                           {"order_id": oid, "payment_ref": "p2", "outcome": "approved"})
    assert again["status"] == "paid"
    with pytest.raises(RequestError) as err:
        service.handle(KIOSK, "order_pay",
                       {"order_id": oid, "payment_ref": "p3", "outcome": "declined"})
    assert err.value.code == "invalid_state"
    assert service.handle(KIOSK, "order_status", {"order_id": oid})["status"] == "paid"
    with pytest.raises(RequestError) as err:
        service.handle(OTHER_KIOSK, "order_status", {"order_id": oid})
    assert err.value.code == "not_found"


def test_unknown_product_in_an_order(service, db_path):
    with pytest.raises(RequestError) as err:
        service.handle(KIOSK, "order_place", order_body(
            lines=[{"gtin": "00000000000000", "quantity": 1}]))
    assert err.value.code == "not_for_sale"
    assert _outbox(db_path) == []


# -- hostile bodies --------------------------------------------------------------------------
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.sampled_from(sorted(KIOSK_OP_NAMES) + ["kiosk_nope"]), body=_json)
def test_any_body_is_answered_or_refused_with_a_structured_error(service, op, body):
    try:
        reply = service.ask(KIOSK, op, body)
    except RequestError as exc:
        assert exc.code in ERROR_CODES and exc.code != "internal", exc
    else:
        assert isinstance(reply, dict)
