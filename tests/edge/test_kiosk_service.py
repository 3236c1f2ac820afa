"""The edge's kiosk ops on a real edge database: search, product, profile, orders, sessions.

Sessions are opened the way the pipeline opens them (a ``sessions`` row for the kiosk
device); the full path, a card tap at a kiosk through Mosquitto and the edge, is in
``tests/kiosk/test_ui.py``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.kiosk_ops import KIOSK_OPS, KioskOpError
from edge.db import connect, migrate
from edge.kiosk_profiles import ProfilePrefetcher
from edge.kiosk_service import KioskService
from edge.seed import seed

from .conftest import GTIN, GTIN_2, LAYOUT

STORE = LAYOUT["store_id"]


@dataclass
class Ctx:
    device_id: str
    kind: str = "kiosk"


@dataclass
class RouterCtx:
    """What ``edge.requests.RequestContext`` carries (the router fills it in the writer)."""

    device_id: str
    kind: str
    zone: str | None
    store_id: str
    now: float
    conn: sqlite3.Connection


KIOSK = Ctx("kiosk-01")
OTHER_KIOSK = Ctx("kiosk-02")


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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "edge.db"
    db = connect(path)
    migrate(db)
    seed(db, LAYOUT)
    conn = db.conn
    conn.execute("INSERT INTO devices (device_id, kind) VALUES ('kiosk-02', 'kiosk')")
    conn.execute("INSERT INTO sync_prices VALUES (?, ?, 'regular', 0, NULL, 8999, 'EUR', NULL, 1)",
                 (STORE, GTIN))
    conn.execute("INSERT INTO sync_prices VALUES ('*', ?, 'promo', 0, NULL, 6999, 'EUR', "
                 "'Soldes', 1)", (GTIN,))
    conn.execute("UPDATE products SET price_cents = 6999 WHERE gtin = ?", (GTIN,))
    now = time.time()
    conn.executemany("INSERT INTO sync_stock VALUES (?, ?, ?, ?)",
                     [(STORE, GTIN, 4, now), ("store-lyon", GTIN, 9, now),
                      ("web-warehouse", GTIN, 120, now)])
    conn.execute("INSERT INTO products (gtin, name, brand, category, price_cents, currency) "
                 "VALUES ('00000000000017', 'Café moulu doux', 'Arôme', 'épicerie', 450, 'EUR')")
    conn.execute("INSERT INTO sessions VALUES ('s-anon', 'kiosk-01', NULL, ?, ?)", (now, now))
    conn.execute("INSERT INTO sessions VALUES ('s-anna', 'kiosk-01', 'cust-anna', ?, ?)",
                 (now, now))
    conn.execute("INSERT INTO sessions VALUES ('s-bob', 'kiosk-02', 'cust-bob', ?, ?)",
                 (now, now))
    conn.close()
    return path


@pytest.fixture
def central() -> FakeCentral:
    return FakeCentral()


class Edge:
    """The kiosk service called the way the kit's router calls it: the writer's connection,
    one transaction per call (the router's batch), committed before the reply."""

    def __init__(self, db_path: Path, central: FakeCentral) -> None:
        self.service = KioskService(STORE)
        self.conn = connect(db_path).conn
        self.prefetcher = ProfilePrefetcher(db_path, central)
        self.now = time.time()
        self.counts = self.service.counts

    def identified(self, customer_id: str) -> bool:
        """What happens when the edge tells a kiosk ``customer_identified``."""
        return self.prefetcher.fetch_now(self.conn, customer_id)

    def handle(self, ctx: Ctx, op: str, body: Any) -> dict[str, Any]:
        rctx = RouterCtx(ctx.device_id, ctx.kind, None, STORE, self.now, self.conn)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            reply = self.service.handle(rctx, op, body)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return reply

    def new_session(self, session_id: str, device_id: str = "kiosk-01",
                    customer_id: str | None = None) -> None:
        """A new session at the kiosk: what the kit's ``session_end`` or the next
        shopper's card opens."""
        self.conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                          (session_id, device_id, customer_id, self.now, self.now))


@pytest.fixture
def service(db_path: Path, central: FakeCentral):
    e = Edge(db_path, central)
    e.identified("cust-anna")
    yield e
    e.conn.close()


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
    service.service.search_index(service.conn).refresh(force=True)
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
    with pytest.raises(KioskOpError) as err:
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


def test_profile_without_consent_shows_no_history(service, central):
    central.tracking = False
    service.identified("cust-anna")
    p = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})
    assert p["points"] == 1200 and p["recent"] == [] and p["wishlist"] == []


def test_consent_withdrawn_at_the_kiosk_hides_history(service, central):
    central.tracking = False
    service.identified("cust-anna")
    service.handle(KIOSK, "kiosk_consent", {"session_id": "s-anna", "granted": True})
    assert service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})["consent"] is True
    service.handle(KIOSK, "kiosk_consent", {"session_id": "s-anna", "granted": False})
    service.identified("cust-anna")  # the kiosk's choice stays, whatever central says
    p = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})
    assert p["consent"] is False and p["recent"] == []


def test_profile_from_cache_when_central_is_down(service, central):
    central.down = True
    central.points = 5
    assert service.identified("cust-anna") is False
    service.now += 3600
    p = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})
    assert p["points"] == 1200 and p["offline"] is True  # the cached figure, said so
    assert central.calls == 2


def test_profile_pending_before_central_answered(service):
    service.new_session("s-carl", customer_id="cust-carl")
    p = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-carl"})
    assert p["pending"] is True and p["points"] is None and p["recent"] == []


@pytest.mark.parametrize("ctx, session, code", [
    (KIOSK, "s-bob", "forbidden"),        # another kiosk's customer
    (OTHER_KIOSK, "s-anna", "forbidden"),
    (KIOSK, "s-nobody", "forbidden"),
    (KIOSK, "s-anon", "session_ended"),    # an earlier session at this kiosk
    (Ctx("nfc-01", "nfc_reader"), "s-anna", "forbidden"),  # not a kiosk at all
])
def test_a_kiosk_reads_only_its_own_shopper(service, ctx, session, code):
    with pytest.raises(KioskOpError) as err:
        service.handle(ctx, "kiosk_profile", {"session_id": session})
    assert err.value.code == code
    assert service.counts[f"error.{code}"] == 1


def test_anonymous_session_has_no_profile(service):
    service.new_session("s-anon-2")
    with pytest.raises(KioskOpError) as err:
        service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anon-2"})
    assert err.value.code == "no_customer"


def test_ended_session_is_nobodys(service):
    service.new_session("s-next")  # "I'm done": the kiosk's next reads start anonymous
    for op, body in [("kiosk_profile", {"session_id": "s-anna"}),
                     ("order_place", order_body()),
                     ("kiosk_wishlist_add", {"session_id": "s-anna", "gtin": GTIN})]:
        with pytest.raises(KioskOpError) as err:
            service.handle(KIOSK, op, body)
        assert err.value.code == "session_ended"


# -- orders --------------------------------------------------------------------------------
def _outbox(db_path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    conn = connect(db_path).conn
    try:
        return [(r[0], r[1], json.loads(r[2])) for r in conn.execute(
            "SELECT event_id, kind, payload FROM outbox ORDER BY seq")]
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
    with pytest.raises(KioskOpError) as err:
        service.handle(KIOSK, "order_place", body)
    assert err.value.code == "bad_request"
    central_points = service.handle(KIOSK, "kiosk_profile", {"session_id": "s-anna"})["points"]
    with pytest.raises(KioskOpError) as err:
        service.handle(KIOSK, "order_place",
                       order_body("p", spend_points=central_points + 1))
    assert err.value.code == "insufficient_points"
    with pytest.raises(KioskOpError) as err:
        service.handle(KIOSK, "order_place",
                       order_body("anon", session_id=None, spend_points=10))
    assert err.value.code == "no_customer"


def test_a_kiosk_cannot_order_for_another_kiosks_customer(service):
    with pytest.raises(KioskOpError) as err:
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
    with pytest.raises(KioskOpError) as err:
        service.handle(KIOSK, "order_pay",
                       {"order_id": oid, "payment_ref": "p3", "outcome": "declined"})
    assert err.value.code == "invalid_state"
    assert service.handle(KIOSK, "order_status", {"order_id": oid})["status"] == "paid"
    with pytest.raises(KioskOpError) as err:
        service.handle(OTHER_KIOSK, "order_status", {"order_id": oid})
    assert err.value.code == "not_found"


def test_unknown_product_in_an_order(service, db_path):
    with pytest.raises(KioskOpError) as err:
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
@given(op=st.sampled_from(sorted(KIOSK_OPS) + ["kiosk_nope"]), body=_json)
def test_any_body_is_answered_or_refused_with_a_structured_error(service, op, body):
    try:
        reply = service.handle(KIOSK, op, body)
    except KioskOpError as exc:
        assert exc.code in {"bad_request", "unknown_op", "not_found", "forbidden",
                            "session_ended", "no_customer", "not_for_sale",
                            "insufficient_points", "invalid_state"}
    else:
        assert isinstance(reply, dict)
