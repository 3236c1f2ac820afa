"""What the edge answers a kiosk: search, product, profile summary, orders, session end.

Each handler is ``handler(ctx, body) -> reply`` for the device kit's request
router (:meth:`KioskService.register`); :meth:`KioskService.handle` is the one
entry point, so every op gets the same checks in the same order:

1. the caller is a kiosk (``ctx.kind``), the body matches the op's schema
   (:mod:`contract.kiosk_ops`); anything else is a structured error, counted;
2. a ``session_id`` must name a session the edge opened *at this kiosk*, not
   ended, not stale: a kiosk cannot read or order for another customer, and a
   tap after "I'm done" is nobody's;
3. amounts are computed here from the ``products`` table (the one price
   source), never taken from the kiosk;
4. an order is committed together with its outbox row (``synchronous=FULL``)
   before the reply says "placed"; ``(device_id, client_order_id)`` is unique,
   so a retried or double-clicked request returns the first order.

The service has its own SQLite connection (WAL lets it read while the writer
writes; its short write transactions wait on ``busy_timeout``), so a slow
request never delays ingest.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from contract.kiosk_ops import KIOSK_OPS, KioskOpError, validate_body

from .db import connect
from .pipeline import uuid5_str
from .product_search import ProductSearch
from .rules import Candidate, Rules

log = logging.getLogger("vitrine.edge.kiosk")

#: 1 point per euro spent; a point is worth one cent when spent as a discount.
POINTS_PER_EURO = 1
CENTS_PER_POINT = 1
#: How long a shopper's session stays usable without activity (the kiosk's own
#: inactivity timeout is shorter; this is the edge's backstop).
SESSION_MAX_IDLE_S = 600.0
#: Orders the kiosk can move forward itself; the rest come from central's lifecycle.
PAYABLE = ("placed",)


class RequestContext(Protocol):
    """Who is asking: the device kit's router fills this from the authenticated session."""

    device_id: str
    kind: str


class ProfileSource(Protocol):
    """Central's customer profile (``GET /api/v1/customers/<id>``); raises on failure."""

    def fetch(self, customer_id: str) -> dict[str, Any]: ...


class Router(Protocol):
    def register(self, op: str, handler: Callable[[Any, dict[str, Any]], dict[str, Any]]
                 ) -> None: ...


class CentralProfiles:
    """Profile lookups over HTTP with the store token, short timeout (a shopper is waiting)."""

    def __init__(self, url: str, token: str, timeout_s: float = 0.5) -> None:
        from .sync import CentralReader

        self.reader = CentralReader(url, token, timeout_s)

    def fetch(self, customer_id: str) -> dict[str, Any]:
        from urllib.parse import quote

        return self.reader.get(f"/api/v1/customers/{quote(customer_id, safe='')}")


class KioskService:
    def __init__(self, db_path: str | Path, store_id: str, *,
                 profiles: ProfileSource | None = None, rules: Rules | None = None,
                 warehouse: str = "web-warehouse", clock: Callable[[], float] = time.time,
                 session_max_idle_s: float = SESSION_MAX_IDLE_S) -> None:
        self.store_id = store_id
        self.profiles = profiles
        self.rules = rules or Rules()
        self.warehouse = warehouse
        self.clock = clock
        self.session_max_idle_s = session_max_idle_s
        self.db = connect(db_path, synchronous="FULL")
        self._conn = self.db.conn
        self._lock = threading.RLock()  # one request at a time on this connection
        self.search_index = ProductSearch(self._conn)
        self.counts: Counter[str] = Counter()
        self._handlers: dict[str, Callable[[RequestContext, dict[str, Any]], dict[str, Any]]] = {
            "kiosk.search": self.search, "kiosk.categories": self.categories,
            "kiosk.product": self.product, "kiosk.profile": self.profile,
            "kiosk.consent": self.consent, "kiosk.wishlist.add": self.wishlist_add,
            "kiosk.order.place": self.place_order, "kiosk.order.pay": self.pay_order,
            "kiosk.order.status": self.order_status, "kiosk.session.end": self.end_session,
        }
        assert set(self._handlers) == set(KIOSK_OPS)

    def close(self) -> None:
        self._conn.close()

    # -- the one entry point ---------------------------------------------------------
    def handle(self, ctx: RequestContext, op: str, body: Any) -> dict[str, Any]:
        """Answer ``op`` or raise :class:`KioskOpError` (counted by code)."""
        try:
            if getattr(ctx, "kind", None) != "kiosk":
                raise KioskOpError("forbidden", "only kiosks may use kiosk ops")
            validate_body(op, body)
            with self._lock:
                reply = self._handlers[op](ctx, body)
        except KioskOpError as exc:
            self.counts[f"error.{exc.code}"] += 1
            raise
        self.counts[op] += 1
        return reply

    def register(self, router: Router, error: Callable[[str, str], Exception]) -> None:
        """Register every kiosk op with the kit's router; ``error(code, message)`` is its
        structured error type (``contract.requests.RequestError``)."""
        for op in KIOSK_OPS:
            def handler(ctx: Any, body: dict[str, Any], op: str = op) -> dict[str, Any]:
                try:
                    return self.handle(ctx, op, body)
                except KioskOpError as exc:
                    raise error(exc.code, exc.message) from None
            router.register(op, handler)

    # -- sessions ----------------------------------------------------------------------
    def _session(self, ctx: RequestContext, session_id: str | None, *, customer: bool
                 ) -> tuple[str | None, str | None]:
        """``(session_id, customer_id)`` of a live session at this kiosk, or refuse."""
        if session_id is None:
            if customer:
                raise KioskOpError("no_customer", "this needs an identified shopper")
            return None, None
        row = self._conn.execute(
            "SELECT s.device_id, s.customer_id, s.last_at, e.session_id FROM sessions s "
            "LEFT JOIN kiosk_sessions_ended e USING (session_id) WHERE s.session_id = ?",
            (session_id,)).fetchone()
        if row is None or row[0] != ctx.device_id:
            # Same answer for "unknown" and "someone else's": no probing for sessions.
            raise KioskOpError("forbidden", "no such session at this kiosk")
        if row[3] is not None or self.clock() - row[2] > self.session_max_idle_s:
            raise KioskOpError("session_ended", "the session ended")
        if customer and row[1] is None:
            raise KioskOpError("no_customer", "nobody identified in this session")
        return session_id, row[1]

    def end_session(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """End the shopper's session: later requests naming it are refused."""
        sid = body["session_id"]
        if sid is None:
            return {"ended": False}
        row = self._conn.execute("SELECT device_id FROM sessions WHERE session_id = ?",
                                 (sid,)).fetchone()
        if row is None or row[0] != ctx.device_id:
            raise KioskOpError("forbidden", "no such session at this kiosk")
        with self._lock:
            self._conn.execute("INSERT OR IGNORE INTO kiosk_sessions_ended VALUES (?, ?, ?)",
                               (sid, ctx.device_id, self.clock()))
        return {"ended": True}

    # -- catalogue ---------------------------------------------------------------------
    def _product_rows(self, gtins: list[str]) -> dict[str, dict[str, Any]]:
        if not gtins:
            return {}
        marks = ",".join("?" * len(gtins))
        return {r[0]: {"gtin": r[0], "name": r[1], "brand": r[2], "category": r[3],
                       "price_cents": r[4], "currency": r[5]}
                for r in self._conn.execute(
                    f"SELECT gtin, name, brand, category, price_cents, currency FROM products "
                    f"WHERE gtin IN ({marks})", gtins)}

    def search(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        gtins = self.search_index.search(body.get("q", ""), category=body.get("category"),
                                         limit=body.get("limit", 20))
        rows = self._product_rows(gtins)
        return {"results": [rows[g] for g in gtins if g in rows]}

    def categories(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        return {"categories": [{"category": c, "count": n}
                               for c, n in self.search_index.categories()]}

    def _promotion(self, gtin: str, now: float) -> dict[str, Any] | None:
        """The promotion behind today's price, with the regular price it replaces."""
        rows = self._conn.execute(
            "SELECT kind, price_cents, label FROM sync_prices WHERE gtin = ? "
            "AND store_id IN (?, '*') AND valid_from <= ? AND (valid_to IS NULL OR ? < valid_to)",
            (gtin, self.store_id, now, now)).fetchall()
        promos = sorted((p, label) for kind, p, label in rows if kind == "promo")
        regular = [p for kind, p, _ in rows if kind == "regular"]
        if not promos:
            return None
        return {"label": promos[0][1], "regular_price_cents": min(regular) if regular else None}

    def stock_view(self, gtin: str) -> dict[str, Any]:
        """This store (the ``stock`` rule between central and a shelf count), others, web."""
        rows = self._conn.execute("SELECT location, quantity, observed_at FROM sync_stock "
                                  "WHERE gtin = ?", (gtin,)).fetchall()
        count = self._conn.execute("SELECT quantity, counted_at FROM local_stock_counts "
                                   "WHERE gtin = ?", (gtin,)).fetchone()
        by_loc = {loc: (qty, at) for loc, qty, at in rows}
        candidates = [Candidate("store_count", count[0], count[1])] if count else []
        if self.store_id in by_loc:
            candidates.append(Candidate("central", *by_loc[self.store_id]))
        win = self.rules.resolve("stock", candidates, self.clock())
        return {"this_store": None if win is None else win.value,
                "other_stores": {loc: q for loc, (q, _) in sorted(by_loc.items())
                                 if loc not in (self.store_id, self.warehouse)},
                "web_warehouse": by_loc.get(self.warehouse, (None, None))[0]}

    def product(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        gtin = body["gtin"]
        row = self._product_rows([gtin]).get(gtin)
        if row is None:
            raise KioskOpError("not_found", f"no product {gtin}")
        where = self._conn.execute("SELECT zone, shelf FROM tags WHERE gtin = ? "
                                   "ORDER BY zone, shelf LIMIT 1", (gtin,)).fetchone()
        return {**row, "promotion": self._promotion(gtin, self.clock()),
                "location": {"zone": where[0], "shelf": where[1]} if where else None,
                "stock": self.stock_view(gtin)}

    # -- the shopper ---------------------------------------------------------------------
    def _summary(self, customer_id: str) -> dict[str, Any]:
        """Points, consent and recent activity: from central, else the cached copy."""
        now = self.clock()
        if self.profiles is not None:
            try:
                prof = self.profiles.fetch(customer_id)
            except Exception as exc:  # central down or slow: the cache answers
                log.info("profile of a customer from cache (%s)", type(exc).__name__)
            else:
                consents = prof.get("consents") or {}
                granted = bool((consents.get("tracking") or {}).get("granted"))
                recent = [e["gtin"] for e in prof.get("timeline", [])
                          if isinstance(e, dict) and e.get("gtin")][:10]
                with self._lock:
                    self._conn.execute(
                        "INSERT INTO customer_cache (customer_id, points, consent, recent, "
                        "fetched_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                        "(customer_id) DO UPDATE SET points = excluded.points, consent = "
                        "excluded.consent, recent = excluded.recent, fetched_at = "
                        "excluded.fetched_at",
                        (customer_id, int(prof.get("loyalty_points") or 0), granted,
                         json.dumps(recent), now))
        row = self._conn.execute(
            "SELECT points, coalesce(consent_local, consent), recent, fetched_at "
            "FROM customer_cache WHERE customer_id = ?", (customer_id,)).fetchone()
        if row is None:
            return {"points": None, "consent": False, "recent": [], "fresh": False}
        return {"points": row[0], "consent": bool(row[1]), "recent": json.loads(row[2]),
                "fresh": now - row[3] < 60}

    def _pending_points(self, customer_id: str) -> int:
        """Points spent at this edge that central has not confirmed yet."""
        return self._conn.execute(
            "SELECT coalesce(sum(k.points_spent), 0) FROM kiosk_orders k JOIN outbox o "
            "ON o.event_id = k.order_id WHERE k.customer_id = ? AND o.sent_at IS NULL "
            "AND k.status != 'cancelled'", (customer_id,)).fetchone()[0]

    def profile(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """Greeting data; recent views and wish-list only with the customer's consent."""
        _, customer_id = self._session(ctx, body["session_id"], customer=True)
        assert customer_id is not None
        s = self._summary(customer_id)
        points = None if s["points"] is None else max(
            0, s["points"] - self._pending_points(customer_id))
        reply: dict[str, Any] = {"points": points, "consent": s["consent"],
                                 "offline": not s["fresh"], "recent": [], "wishlist": []}
        if s["consent"]:
            wish = [r[0] for r in self._conn.execute(
                "SELECT gtin FROM kiosk_wishlist WHERE customer_id = ? ORDER BY added_at DESC "
                "LIMIT 10", (customer_id,))]
            rows = self._product_rows(list(dict.fromkeys(s["recent"] + wish)))
            reply["recent"] = [rows[g] for g in s["recent"] if g in rows]
            reply["wishlist"] = [rows[g] for g in wish if g in rows]
        return reply

    def consent(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """Give or withdraw, at the kiosk, consent to see personal history on screen.

        Kept at this edge and winning over central's tracking consent from then on
        (it is not forwarded to central yet).
        """
        _, customer_id = self._session(ctx, body["session_id"], customer=True)
        with self._lock:
            self._conn.execute(
                "INSERT INTO customer_cache (customer_id, consent_local, fetched_at) "
                "VALUES (?, ?, 0) ON CONFLICT (customer_id) DO UPDATE SET "
                "consent_local = excluded.consent_local",
                (customer_id, body["granted"]))
        return {"consent": body["granted"]}

    def wishlist_add(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        _, customer_id = self._session(ctx, body["session_id"], customer=True)
        if not self._product_rows([body["gtin"]]):
            raise KioskOpError("not_found", f"no product {body['gtin']}")
        with self._lock:
            self._conn.execute("INSERT OR IGNORE INTO kiosk_wishlist VALUES (?, ?, ?)",
                               (customer_id, body["gtin"], self.clock()))
        return {"added": body["gtin"]}

    # -- orders --------------------------------------------------------------------------
    def _order_reply(self, row: sqlite3.Row | tuple, duplicate: bool) -> dict[str, Any]:
        order = json.loads(row[5])
        return {"order_id": row[0], "status": row[1], "total_cents": row[2],
                "currency": row[3], "pickup_code": row[4], "lines": order["lines"],
                "fulfilment": order["fulfilment"], "points_spent": order["points_spent"],
                "points_earned": order["points_earned"], "duplicate": duplicate}

    def _find_order(self, device_id: str, client_order_id: str) -> tuple | None:
        return self._conn.execute(
            "SELECT order_id, status, total_cents, currency, pickup_code, payload "
            "FROM kiosk_orders WHERE device_id = ? AND client_order_id = ?",
            (device_id, client_order_id)).fetchone()

    def place_order(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """Price, commit with its outbox row, then answer "placed" (idempotent per client id)."""
        existing = self._find_order(ctx.device_id, body["client_order_id"])
        if existing is not None:
            return self._order_reply(existing, duplicate=True)
        session_id, customer_id = self._session(ctx, body.get("session_id"), customer=False)
        fulfilment = dict(body["fulfilment"])
        if fulfilment["type"] == "click_and_collect":
            fulfilment.setdefault("store_id", self.store_id)
        elif "address" not in fulfilment:
            raise KioskOpError("bad_request", "home_delivery needs an address")
        quantities: dict[str, int] = {}
        for line in body["lines"]:
            quantities[line["gtin"]] = quantities.get(line["gtin"], 0) + line["quantity"]
        rows = self._product_rows(list(quantities))
        lines, subtotal, currency = [], 0, None
        for gtin, qty in quantities.items():
            row = rows.get(gtin)
            if row is None or row["price_cents"] is None:
                raise KioskOpError("not_for_sale", f"{gtin} has no price here")
            if currency not in (None, row["currency"]):
                raise KioskOpError("not_for_sale", "products priced in different currencies")
            currency = row["currency"]
            lines.append({"gtin": gtin, "name": row["name"], "quantity": qty,
                          "unit_price_cents": row["price_cents"]})
            subtotal += qty * row["price_cents"]
        spend = body.get("spend_points", 0)
        if spend and customer_id is None:
            raise KioskOpError("no_customer", "only an identified shopper can spend points")
        spend = min(spend, subtotal // CENTS_PER_POINT)  # never a negative total
        now = self.clock()
        order_id = uuid5_str(f"kiosk-order/{self.store_id}/{ctx.device_id}/"
                             f"{body['client_order_id']}")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                again = self._find_order(ctx.device_id, body["client_order_id"])
                if again is not None:  # the same request, racing itself
                    self._conn.execute("ROLLBACK")
                    return self._order_reply(again, duplicate=True)
                if spend and customer_id is not None:
                    available = self._conn.execute(
                        "SELECT points FROM customer_cache WHERE customer_id = ?",
                        (customer_id,)).fetchone()
                    left = (available[0] if available else 0) - self._pending_points(customer_id)
                    if spend > left:
                        raise KioskOpError("insufficient_points",
                                           f"{spend} points asked, {max(left, 0)} available")
                total = subtotal - spend * CENTS_PER_POINT
                earned = total // 100 * POINTS_PER_EURO if customer_id else 0
                pickup = f"{secrets.randbelow(10**6):06d}"
                central_order = {
                    "order_id": order_id, "channel": "kiosk", "customer_id": customer_id,
                    "created_at": now, "fulfilment": fulfilment, "lines": lines,
                    "total_cents": total, "currency": currency, "points_spent": spend,
                    "points_earned": earned, "store_id": self.store_id,
                    "device_id": ctx.device_id}
                payload = json.dumps(central_order, sort_keys=True)
                self._conn.execute(
                    "INSERT INTO kiosk_orders (order_id, device_id, client_order_id, session_id, "
                    "customer_id, status, total_cents, currency, points_spent, points_earned, "
                    "pickup_code, payload, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, 'placed', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (order_id, ctx.device_id, body["client_order_id"], session_id, customer_id,
                     total, currency, spend, earned, pickup, payload, now, now))
                self._conn.execute(
                    "INSERT INTO outbox (event_id, kind, customer_key, payload, created_at) "
                    "VALUES (?, 'order', ?, ?, ?)", (order_id, customer_id or order_id,
                                                      payload, now))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        log.info("kiosk %s placed order %s (%d %s)", ctx.device_id, order_id, total, currency)
        found = self._find_order(ctx.device_id, body["client_order_id"])
        assert found is not None
        return self._order_reply(found, duplicate=False)

    def _own_order(self, ctx: RequestContext, order_id: str) -> tuple:
        row = self._conn.execute(
            "SELECT order_id, status, total_cents, currency, pickup_code, payload, device_id "
            "FROM kiosk_orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is None or row[6] != ctx.device_id:
            raise KioskOpError("not_found", f"no order {order_id} from this kiosk")
        return row

    def pay_order(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """Record the payment terminal's outcome; the same report twice changes nothing."""
        row = self._own_order(ctx, body["order_id"])
        target = "paid" if body["outcome"] == "approved" else "payment_declined"
        with self._lock:
            cur = self._conn.execute(
                "UPDATE kiosk_orders SET status = ?, payment_ref = ?, updated_at = ? "
                "WHERE order_id = ? AND status IN ('placed', 'payment_declined')",
                (target, body["payment_ref"], self.clock(), body["order_id"]))
        if cur.rowcount == 0 and row[1] != target:
            raise KioskOpError("invalid_state", f"order is {row[1]}")
        return self._order_reply(self._own_order(ctx, body["order_id"]), duplicate=False)

    def order_status(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        return self._order_reply(self._own_order(ctx, body["order_id"]), duplicate=False)
