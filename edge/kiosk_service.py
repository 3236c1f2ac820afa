"""What the edge answers a kiosk: search, product, profile summary, orders.

Each handler is ``handler(ctx, body) -> reply`` for the device kit's request
router (:meth:`KioskService.register`), which runs it in the writer, on the
writer's connection, inside the batch's transaction, and publishes the reply
only after COMMIT. :meth:`KioskService.handle` is the one entry point, so every
op gets the same checks in the same order:

1. the caller is a kiosk (``ctx.kind``), the body matches the op's schema
   (:mod:`contract.kiosk_ops`); anything else is a structured error, counted;
2. a ``session_id`` must name the *current* session the edge opened at this
   kiosk: a kiosk cannot read or order for another customer, and after "I'm
   done" (the kit's ``session_end``) the old session is nobody's;
3. amounts are computed here from the ``products`` table (the one price
   source), never taken from the kiosk;
4. an order row and its outbox row are written together, so "placed" is never
   said of an order the forwarder cannot see; ``(device_id, client_order_id)``
   is unique, so a retried or double-clicked request returns the first order
   (on top of the router's replay of a repeated ``request_id``).

Nothing here waits on the network: the profile summary is read from
``customer_cache``, which ``edge/kiosk_profiles.py`` fills from central in its
own thread when a shopper identifies at a kiosk (and refreshes every few
seconds while they stand there). Points spent and earned on an order are queued
for central's ledger when the order is paid (``edge/kiosk_loyalty.py``); the
balance shown is central's less what central has not seen yet. Consent given or
withdrawn here is queued for central as the customer's own act (a ``consent``
event of the ``kiosk`` channel, sent only for the shopper identified in this
session) and applies on this edge at once.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections import Counter
from collections.abc import Callable
from typing import Any

from contract.asset_fetch import ASSET_ID_RE
from contract.kiosk_ops import KIOSK_OP_NAMES
from contract.requests import REQUEST_OPS, RequestError

from . import kiosk_loyalty
from .order_status import change_status
from .pipeline import uuid5_str
from .product_search import ProductSearch
from .requests import RequestContext, RequestRouter
from .rules import Rules
from .stock_view import WEB_WAREHOUSE, stock_view

log = logging.getLogger("vitrine.edge.kiosk")

#: 1 point per euro spent; a point is worth one cent when spent as a discount.
POINTS_PER_EURO = 1
CENTS_PER_POINT = 1


class KioskService:
    """The kiosk ops' handlers. Stateless but for the search index; the database is the
    caller's (``ctx.conn``: the writer's connection, inside the router's transaction)."""

    def __init__(self, store_id: str, *, rules: Rules | None = None,
                 warehouse: str = WEB_WAREHOUSE, profile_fresh_s: float = 60.0,
                 central_link: bool = True) -> None:
        """``central_link``: profiles are being fetched from central (an edge without
        ``central_url`` has only what its cache holds, so nothing is "pending")."""
        self.store_id = store_id
        self.central_link = central_link
        self.rules = rules or Rules()
        self.warehouse = warehouse
        self.profile_fresh_s = profile_fresh_s
        self._search: ProductSearch | None = None
        self.counts: Counter[str] = Counter()
        self._handlers: dict[str, Callable[[RequestContext, dict[str, Any]], dict[str, Any]]] = {
            "kiosk_search": self.search, "kiosk_categories": self.categories,
            "kiosk_product": self.product, "kiosk_profile": self.profile,
            "kiosk_consent": self.consent, "kiosk_wishlist_add": self.wishlist_add,
            "order_place": self.place_order, "order_pay": self.pay_order,
            "order_status": self.order_status,
        }
        assert set(self._handlers) == set(KIOSK_OP_NAMES)

    def search_index(self, conn: sqlite3.Connection) -> ProductSearch:
        if self._search is None or self._search.source is not conn:
            self._search = ProductSearch(conn)
        return self._search

    # -- entry points -------------------------------------------------------------------
    def handle(self, ctx: RequestContext, op: str, body: Any) -> dict[str, Any]:
        """Check and answer ``op`` as the kit's router does (kind, request schema, reply
        schema), or raise :class:`RequestError`; for callers without a router."""
        spec = REQUEST_OPS.get(op)
        if op not in self._handlers or spec is None:
            raise self._refuse(RequestError("unknown_op", f"{op!r} is not a kiosk op"))
        if getattr(ctx, "kind", None) not in spec.kinds:
            raise self._refuse(RequestError("forbidden", f"a {ctx.kind} may not ask {op!r}"))
        try:
            spec.check_request(body)
        except RequestError as exc:
            raise self._refuse(exc) from None
        reply = self._counted(op)(ctx, body)
        try:
            return spec.check_reply(reply)
        except RequestError as exc:  # our own reply broke the contract: a bug here
            raise AssertionError(exc.message) from None

    def _refuse(self, exc: RequestError) -> RequestError:
        self.counts[f"error.{exc.code}"] += 1
        return exc

    def _counted(self, op: str) -> Callable[[RequestContext, dict[str, Any]], dict[str, Any]]:
        handler = self._handlers[op]

        def counted(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
            try:
                reply = handler(ctx, body)
            except RequestError as exc:
                raise self._refuse(exc) from None
            self.counts[op] += 1
            return reply

        return counted

    def register(self, router: RequestRouter) -> None:
        """Answer every kiosk op on the kit's router (which checks kind and schemas)."""
        for op in KIOSK_OP_NAMES:
            router.register(op, self._counted(op))

    # -- sessions ----------------------------------------------------------------------
    def _session(self, ctx: RequestContext, session_id: str | None, *, customer: bool
                 ) -> tuple[str | None, str | None]:
        """``(session_id, customer_id)`` of the current session at this kiosk, or refuse.

        Current means the latest the edge opened at this device: once the shopper
        is done (``session_end``) or someone else identifies, the old session is
        nobody's and every op naming it is refused with ``session_ended``.
        """
        if session_id is None:
            if customer:
                raise RequestError("no_customer", "this needs an identified shopper")
            return None, None
        row = ctx.conn.execute("SELECT device_id, customer_id, rowid, ended_at FROM sessions "
                               "WHERE session_id = ?", (session_id,)).fetchone()
        if row is None or row[0] != ctx.device_id:
            # Same answer for "unknown" and "someone else's": no probing for sessions.
            raise RequestError("forbidden", "no such session at this kiosk")
        latest = ctx.conn.execute("SELECT max(rowid) FROM sessions WHERE device_id = ?",
                                  (ctx.device_id,)).fetchone()[0]
        if row[2] != latest or row[3] is not None:
            raise RequestError("session_ended", "the session ended")
        if customer and row[1] is None:
            raise RequestError("no_customer", "nobody identified in this session")
        return session_id, row[1]

    # -- catalogue ---------------------------------------------------------------------
    @staticmethod
    def _product_rows(conn: sqlite3.Connection, gtins: list[str]) -> dict[str, dict[str, Any]]:
        if not gtins:
            return {}
        marks = ",".join("?" * len(gtins))
        return {r[0]: {"gtin": r[0], "name": r[1], "brand": r[2], "category": r[3],
                       "price_cents": r[4], "currency": r[5]}
                for r in conn.execute(
                    f"SELECT gtin, name, brand, category, price_cents, currency FROM products "
                    f"WHERE gtin IN ({marks})", gtins)}

    def search(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        gtins = self.search_index(ctx.conn).search(
            body.get("q", ""), category=body.get("category"), limit=body.get("limit", 20))
        rows = self._product_rows(ctx.conn, gtins)
        return {"results": [rows[g] for g in gtins if g in rows]}

    def categories(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        return {"categories": [{"category": c, "count": n}
                               for c, n in self.search_index(ctx.conn).categories()]}

    def _promotion(self, conn: sqlite3.Connection, gtin: str, now: float
                   ) -> dict[str, Any] | None:
        """The promotion behind today's price, with the regular price it replaces."""
        rows = conn.execute(
            "SELECT kind, price_cents, label FROM sync_prices WHERE gtin = ? "
            "AND store_id IN (?, '*') AND valid_from <= ? AND (valid_to IS NULL OR ? < valid_to)",
            (gtin, self.store_id, now, now)).fetchall()
        promos = sorted((p, label or "") for kind, p, label in rows if kind == "promo")
        regular = [p for kind, p, _ in rows if kind == "regular"]
        if not promos:
            return None
        return {"label": promos[0][1], "regular_price_cents": min(regular) if regular else None}

    def product(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        gtin = body["gtin"]
        row = self._product_rows(ctx.conn, [gtin]).get(gtin)
        if row is None:
            raise RequestError("not_found", f"no product {gtin}")
        where = ctx.conn.execute("SELECT zone, shelf FROM tags WHERE gtin = ? "
                                 "ORDER BY zone, shelf LIMIT 1", (gtin,)).fetchone()
        return {**row, "promotion": self._promotion(ctx.conn, gtin, ctx.now),
                "location": {"zone": where[0], "shelf": where[1]} if where else None,
                "stock": self._stock(ctx, gtin), "images": self._images(ctx.conn, gtin)}

    @staticmethod
    def _images(conn: sqlite3.Connection, gtin: str) -> list[str]:
        """The product's pictures in the asset cache (``product_content``, as screens get)."""
        row = conn.execute("SELECT images FROM product_content WHERE gtin = ?",
                           (gtin,)).fetchone()
        try:
            ids = json.loads(row[0]) if row else []
        except ValueError:
            return []
        return [i for i in ids if isinstance(i, str) and ASSET_ID_RE.match(i)][:8]

    def _stock(self, ctx: RequestContext, gtin: str) -> dict[str, Any]:
        """The kit's stock view (``edge/stock_view.py``), this store's figure as a number."""
        view = stock_view(ctx.conn, self.store_id, gtin, self.rules, ctx.now, self.warehouse)
        here = view["this_store"]
        return {"this_store": here["quantity"] if here else None,
                "other_stores": view["other_stores"], "web_warehouse": view["web_warehouse"]}

    # -- the shopper ---------------------------------------------------------------------
    @staticmethod
    def _points(ctx: RequestContext, customer_id: str) -> tuple[int, bool] | None:
        """``(points available, provisional)``, or None when central never answered."""
        row = ctx.conn.execute("SELECT points, fetched_at FROM customer_cache "
                               "WHERE customer_id = ?", (customer_id,)).fetchone()
        if row is None or row[1] == 0:
            return None
        return kiosk_loyalty.available(ctx.conn, customer_id, row[0], row[1], ctx.now)

    def profile(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """Greeting data from the profile cache (``edge/kiosk_profiles.py`` fills it from
        central when the shopper identifies); history and wish-list only with consent."""
        _, customer_id = self._session(ctx, body["session_id"], customer=True)
        assert customer_id is not None
        conn = ctx.conn
        row = conn.execute(
            "SELECT points, coalesce(consent_local, consent), recent, fetched_at "
            "FROM customer_cache WHERE customer_id = ?", (customer_id,)).fetchone()
        if row is None or row[3] == 0:
            # Not fetched yet (central is being asked right now, or is down and this
            # customer was never seen here): the kiosk asks again shortly.
            consent = bool(row[1]) if row else False
            return {"points": None, "consent": consent, "offline": True,
                    "pending": self.central_link, "recent": [], "wishlist": []}
        points, provisional = kiosk_loyalty.available(conn, customer_id, row[0], row[3],
                                                      ctx.now)
        reply: dict[str, Any] = {"points": points, "provisional": provisional,
                                 "consent": bool(row[1]),
                                 "offline": ctx.now - row[3] > self.profile_fresh_s,
                                 "pending": False, "recent": [], "wishlist": []}
        if row[1]:
            recent = [g for g in json.loads(row[2]) if isinstance(g, str)]
            wish = [r[0] for r in conn.execute(
                "SELECT gtin FROM kiosk_wishlist WHERE customer_id = ? ORDER BY added_at DESC "
                "LIMIT 10", (customer_id,))]
            rows = self._product_rows(conn, list(dict.fromkeys(recent + wish)))
            reply["recent"] = [rows[g] for g in recent if g in rows]
            reply["wishlist"] = [rows[g] for g in wish if g in rows]
        return reply

    def consent(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """Give or withdraw, at the kiosk, the tracking consent (what lets the kiosk show
        personal history).

        Applies on this edge at once (``consent_local`` wins over the cached central
        answer, so a withdrawal hides the history from the very next profile reply)
        and is queued for central as a ``consent`` event of the ``kiosk`` channel for
        the customer identified in *this* session: the kiosk acts at the customer's
        request, it cannot name anyone. Central orders decisions by time and lets a
        withdrawal win (a kiosk grant never undoes a withdrawal made on the web or in
        the app). Once central has the decision, the next fetch takes over
        (``edge/kiosk_profiles.py``).
        """
        session_id, customer_id = self._session(ctx, body["session_id"], customer=True)
        granted = bool(body["granted"])
        event_id = uuid5_str(f"kiosk-consent/{self.store_id}/{ctx.device_id}/{session_id}/"
                             f"{granted}/{ctx.now!r}")
        event = {"event_id": event_id, "type": "consent", "channel": "kiosk",
                 "occurred_at": ctx.now, "customer_id": customer_id,
                 "store_id": self.store_id, "consents": {"tracking": granted}}
        ctx.conn.execute("INSERT OR IGNORE INTO outbox (event_id, kind, customer_key, payload, "
                         "created_at) VALUES (?, 'consent', ?, ?, ?)",
                         (event_id, customer_id, json.dumps(event, sort_keys=True), ctx.now))
        ctx.conn.execute(
            "INSERT INTO customer_cache (customer_id, consent_local, consent_event, fetched_at) "
            "VALUES (?, ?, ?, 0) ON CONFLICT (customer_id) DO UPDATE SET "
            "consent_local = excluded.consent_local, consent_event = excluded.consent_event",
            (customer_id, granted, event_id))
        if not granted:  # nothing personal left on this edge's copy either
            ctx.conn.execute("UPDATE customer_cache SET recent = '[]' WHERE customer_id = ?",
                             (customer_id,))
        return {"consent": granted}

    def wishlist_add(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        _, customer_id = self._session(ctx, body["session_id"], customer=True)
        if not self._product_rows(ctx.conn, [body["gtin"]]):
            raise RequestError("not_found", f"no product {body['gtin']}")
        ctx.conn.execute("INSERT OR IGNORE INTO kiosk_wishlist VALUES (?, ?, ?)",
                         (customer_id, body["gtin"], ctx.now))
        return {"added": body["gtin"]}

    # -- orders --------------------------------------------------------------------------
    @staticmethod
    def _order_reply(conn: sqlite3.Connection, row: tuple, duplicate: bool) -> dict[str, Any]:
        order = json.loads(row[5])
        reply = {"order_id": row[0], "status": row[1], "total_cents": row[2],
                 "currency": row[3], "pickup_code": row[4], "lines": order["lines"],
                 "fulfilment": order["fulfilment"], "points_spent": order["points_spent"],
                 "points_earned": order["points_earned"], "duplicate": duplicate,
                 "committed": True}
        state, reason = kiosk_loyalty.order_state(conn, row[0])
        if state is not None:
            reply["points_state"] = state
            if reason:
                reply["points_refused"] = reason[:200]
        return reply

    @staticmethod
    def _find_order(conn: sqlite3.Connection, device_id: str, client_order_id: str
                    ) -> tuple | None:
        return conn.execute(
            "SELECT order_id, status, total_cents, currency, pickup_code, payload "
            "FROM kiosk_orders WHERE device_id = ? AND client_order_id = ?",
            (device_id, client_order_id)).fetchone()

    def place_order(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """Price at the edge; order row and outbox row in one savepoint (inside the router's
        transaction: the reply is published only after COMMIT); idempotent per client id."""
        conn = ctx.conn
        existing = self._find_order(conn, ctx.device_id, body["client_order_id"])
        if existing is not None:
            return self._order_reply(conn, existing, duplicate=True)
        session_id, customer_id = self._session(ctx, body.get("session_id"), customer=False)
        fulfilment = dict(body["fulfilment"])
        if fulfilment["type"] == "click_and_collect":
            fulfilment.setdefault("store_id", self.store_id)
        elif "address" not in fulfilment:
            raise RequestError("bad_request", "home_delivery needs an address")
        quantities: dict[str, int] = {}
        for line in body["lines"]:
            quantities[line["gtin"]] = quantities.get(line["gtin"], 0) + line["quantity"]
        rows = self._product_rows(conn, list(quantities))
        lines, subtotal, currency = [], 0, None
        for gtin, qty in quantities.items():
            row = rows.get(gtin)
            if row is None or row["price_cents"] is None:
                raise RequestError("not_for_sale", f"{gtin} has no price here")
            if currency not in (None, row["currency"]):
                raise RequestError("not_for_sale", "products priced in different currencies")
            currency = row["currency"]
            lines.append({"gtin": gtin, "name": row["name"], "quantity": qty,
                          "unit_price_cents": row["price_cents"]})
            subtotal += qty * row["price_cents"]
        spend = body.get("spend_points", 0)
        if spend and customer_id is None:
            raise RequestError("no_customer", "only an identified shopper can spend points")
        spend = min(spend, subtotal // CENTS_PER_POINT)  # never a negative total
        if spend and customer_id is not None:
            have = self._points(ctx, customer_id)
            left = have[0] if have else 0
            if spend > left:
                raise RequestError("insufficient_points",
                                   f"{spend} points asked, {left} available")
        total = subtotal - spend * CENTS_PER_POINT
        earned = total // 100 * POINTS_PER_EURO if customer_id else 0
        now = ctx.now
        order_id = uuid5_str(f"kiosk-order/{self.store_id}/{ctx.device_id}/"
                             f"{body['client_order_id']}")
        central_order = {
            "order_id": order_id, "channel": "kiosk", "customer_id": customer_id,
            "created_at": now, "fulfilment": fulfilment, "lines": lines,
            "total_cents": total, "currency": currency, "points_spent": spend,
            "points_earned": earned, "store_id": self.store_id, "device_id": ctx.device_id}
        payload = json.dumps(central_order, sort_keys=True)
        pickup = f"{secrets.randbelow(10**6):06d}"
        conn.execute("SAVEPOINT kiosk_order")
        try:
            conn.execute(
                "INSERT INTO kiosk_orders (order_id, device_id, client_order_id, session_id, "
                "customer_id, status, total_cents, currency, points_spent, points_earned, "
                "pickup_code, payload, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'placed', ?, ?, ?, ?, ?, ?, ?, ?)",
                (order_id, ctx.device_id, body["client_order_id"], session_id, customer_id,
                 total, currency, spend, earned, pickup, payload, now, now))
            conn.execute("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at) "
                         "VALUES (?, 'order', ?, ?, ?)",
                         (order_id, customer_id or order_id, payload, now))
            if customer_id is not None:
                kiosk_loyalty.hold(conn, order_id, customer_id, spend, now)
                if total == 0:  # paid in full with points: nothing for the terminal
                    kiosk_loyalty.post(conn, order_id, self.store_id, now)
        except BaseException:
            conn.execute("ROLLBACK TO kiosk_order")
            conn.execute("RELEASE kiosk_order")
            raise
        conn.execute("RELEASE kiosk_order")
        log.info("kiosk %s placed order %s (%d %s)", ctx.device_id, order_id, total, currency)
        found = self._find_order(conn, ctx.device_id, body["client_order_id"])
        assert found is not None
        return self._order_reply(conn, found, duplicate=False)

    @staticmethod
    def _own_order(ctx: RequestContext, order_id: str) -> tuple:
        row = ctx.conn.execute(
            "SELECT order_id, status, total_cents, currency, pickup_code, payload, device_id "
            "FROM kiosk_orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is None or row[6] != ctx.device_id:
            raise RequestError("not_found", f"no order {order_id} from this kiosk")
        return row

    def pay_order(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """Record the payment terminal's outcome; the same report twice changes nothing."""
        row = self._own_order(ctx, body["order_id"])
        target = "paid" if body["outcome"] == "approved" else "payment_declined"
        if row[1] not in ("placed", "payment_declined"):
            if row[1] != target:
                raise RequestError("invalid_state", f"order is {row[1]}")
        elif target == "paid":
            # Through the lifecycle: history, and an outbox row that tells central.
            ctx.conn.execute("UPDATE kiosk_orders SET payment_ref = ? WHERE order_id = ?",
                             (body["payment_ref"], body["order_id"]))
            change_status(ctx.conn, body["order_id"], "paid", actor=ctx.device_id,
                          now=ctx.now, expected=row[1])
            # A purchase: its points go to central's ledger (edge/kiosk_loyalty.py).
            kiosk_loyalty.post(ctx.conn, body["order_id"], self.store_id, ctx.now)
        else:  # declined: the edge's own state, still "placed" for central
            ctx.conn.execute(
                "UPDATE kiosk_orders SET status = ?, payment_ref = ?, updated_at = ? "
                "WHERE order_id = ?", (target, body["payment_ref"], ctx.now, body["order_id"]))
        return self._order_reply(ctx.conn, self._own_order(ctx, body["order_id"]),
                                 duplicate=False)

    def order_status(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        return self._order_reply(ctx.conn, self._own_order(ctx, body["order_id"]),
                                 duplicate=False)
