"""The kiosk's logic, without a window: which screen, what it shows, what a touch does.

:class:`KioskFlow` is a small state machine over eight screens::

    attract ──touch──> search ──tap result──> product ──add──> cart ──pay──> pickup
       ^  └──card/app QR──> greeting ──────────^          address ─┤ (home delivery)
       │                                                   stores ─┘ (collect elsewhere)
       └────────── "I'm done" or inactivity timeout (from any screen) <────────┘

The Kivy app (``kiosk/app.py``) only shows this state and forwards touches;
tests drive the same methods directly. Everything about the shopper (greeting,
points, history, cart, order, search text) lives in :class:`ShopperState`,
which :meth:`KioskFlow.end_session` replaces with a fresh one after telling the
edge the session ended: nothing of the previous shopper survives on screen.

The flow runs on one thread (Kivy's main thread); commands from the edge
arrive on the network thread and are handed over by the app.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from contract.gs1 import GS1Error
from contract.nfc_tags import tag_says
from contract.scan import classify

from .address import FIELDS as ADDRESS_FIELDS
from .address import clip, validate
from .i18n import LANGUAGES
from .payment import PaymentDeclined, PaymentProvider, PaymentTimeout
from .store import StoreClient, StoreRefused, StoreUnavailable
from .stores import store_options

log = logging.getLogger("vitrine.kiosk")

SCREENS = ("attract", "greeting", "search", "product", "cart", "address", "stores", "pickup")
#: Seconds without a touch before the session ends and the attract loop returns.
IDLE_TIMEOUT_S = 60.0
#: How often the kiosk asks again for a profile central has not delivered yet (the app
#: asks every 50 ms: about six seconds, then greets without points).
PROFILE_RETRIES = 120
#: While a shopper is identified, the kiosk asks the edge for their profile this often,
#: so points earned or consent withdrawn on the web show within seconds (the edge
#: refreshes its copy from central on the same cadence, edge/kiosk_profiles.py).
PROFILE_REFRESH_S = 2.0


class Publisher(Protocol):
    """The kiosk's device session, for what its own reader and camera read (it stamps
    ``msg_id`` and ``ts``)."""

    def publish_json(self, channel: str, payload: dict[str, Any]) -> str: ...


@dataclass
class Message:
    """Something to tell the shopper: an i18n key and its parameters."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    error: bool = False


@dataclass
class ShopperState:
    """Everything that belongs to the shopper in front of the kiosk, and nothing else."""

    session_id: str | None = None
    identified: bool = False
    points: int | None = None
    points_offline: bool = False
    profile_pending: bool = False  # central not asked yet: the edge said "ask again"
    profile_retries: int = 0
    profile_loaded_at: float = 0.0
    #: Some points wait for central's confirmation (spent or earned while it was away).
    points_provisional: bool = False
    consent: bool = False
    recent: list[dict[str, Any]] = field(default_factory=list)
    wishlist: list[dict[str, Any]] = field(default_factory=list)
    query: str = ""
    category: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    product: dict[str, Any] | None = None
    cart: dict[str, dict[str, Any]] = field(default_factory=dict)  # gtin -> line
    fulfilment: str = "click_and_collect"
    collect_store: str | None = None  # click & collect elsewhere (None: this store)
    stores: list[dict[str, Any]] = field(default_factory=list)  # the picker's rows
    address_form: dict[str, str] = field(default_factory=dict)  # as typed (clipped)
    address_errors: dict[str, str] = field(default_factory=dict)  # field -> i18n key
    address: dict[str, str] | None = None  # validated: what the order carries
    use_points: bool = False
    checkout_id: str | None = None  # one per cart content: a retry is the same order
    order: dict[str, Any] | None = None
    paid: bool = False


class KioskFlow:
    def __init__(self, store: StoreClient, payments: PaymentProvider, *,
                 publisher: Publisher | None = None, idle_timeout_s: float = IDLE_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic, lang: str = "fr",
                 store_directory: dict[str, dict[str, Any]] | None = None) -> None:
        self.store = store
        #: Names and distances of the other stores (``kiosk/stores.py``).
        self.store_directory = store_directory or {}
        self.payments = payments
        self.publisher = publisher
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock
        self.lang = lang
        self.screen = "attract"
        self.shopper = ShopperState()
        self.message: Message | None = None
        self.categories: list[dict[str, Any]] = []
        self.last_touch = clock()
        self.sessions_ended = 0
        self._listeners: list[Callable[[KioskFlow], None]] = []

    # -- observers ------------------------------------------------------------------
    def on_change(self, listener: Callable[[KioskFlow], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener(self)

    def _go(self, screen: str) -> None:
        assert screen in SCREENS
        self.screen = screen
        self._changed()

    def _say(self, key: str, *, error: bool = False, **params: Any) -> None:
        self.message = Message(key, params, error)

    def _store_call(self, fn: Callable[[], Any]) -> Any:
        """Run a store request; on failure tell the shopper plainly and return None."""
        try:
            return fn()
        except StoreUnavailable as exc:
            log.warning("edge unreachable: %s", exc)
            self._say("store_unreachable", error=True)
        except StoreRefused as exc:
            if exc.code == "session_ended":
                self.end_session(tell_edge=False)
                return None
            self._say("refused", error=True, code=exc.code)
        self._changed()
        return None

    # -- touches ---------------------------------------------------------------------------
    def touch(self) -> None:
        """Any touch: the shopper is still here."""
        self.last_touch = self.clock()

    def set_lang(self, lang: str) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"language {lang!r} not in {LANGUAGES}")
        self.touch()
        self.lang = lang
        self._changed()

    def toggle_lang(self) -> None:
        self.set_lang(LANGUAGES[(LANGUAGES.index(self.lang) + 1) % len(LANGUAGES)])

    def start(self) -> None:
        """A touch on the attract loop: an anonymous shopper starts browsing."""
        self.touch()
        if self.screen == "attract":
            self.message = None
            if not self.categories:
                self.categories = self._store_call(self.store.categories) or []
            self._go("search")

    # -- identification --------------------------------------------------------------------
    def card_read(self, uid: str, ndef_b64: str | None) -> None:
        """The kiosk's NFC reader read a tag: a loyalty card (the edge decides) or a shelf tag.

        The read goes to the edge like any reader's; a valid loyalty token comes back
        as a ``customer_identified`` command. A product tag opens that product here.
        """
        self.touch()
        if self.publisher is not None:
            self.publisher.publish_json("nfc", {"uid": uid, "ndef": ndef_b64})
        gtin = _gtin_from_ndef(ndef_b64)
        if gtin:
            self.open_product(gtin)

    def code_scanned(self, text: str) -> None:
        """The kiosk's camera read a QR: the app's loyalty QR (to the edge) or a label."""
        self.touch()
        try:
            content = classify(text)
        except GS1Error:
            self._say("refused", error=True, code="bad_label")
            self._changed()
            return
        if content.kind == "loyalty" and self.publisher is not None:
            self.publisher.publish_json("qr", {"text": text})
        elif content.gtin:
            self.open_product(content.gtin)

    def customer_identified(self, session_id: str) -> None:
        """The edge verified a card or app token here and opened ``session_id``."""
        self.touch()
        if self.shopper.session_id not in (None, session_id) or self.shopper.identified:
            # Someone else identified: the edge already moved to their session (telling
            # it "session_end" now would end the new one); the previous screen goes.
            self.end_session(tell_edge=False)
        self.shopper.session_id = session_id
        self.shopper.identified = True
        self._load_profile()
        if self.screen in ("attract", "search"):
            self._go("greeting")
        else:
            self._changed()

    def _load_profile(self) -> None:
        sid = self.shopper.session_id
        if sid is None:
            return
        prof = self._store_call(lambda: self.store.profile(sid))
        if prof is None:
            return
        s = self.shopper
        s.points, s.points_offline, s.consent = prof["points"], prof["offline"], prof["consent"]
        s.points_provisional = bool(prof.get("provisional"))
        s.recent, s.wishlist = prof["recent"], prof["wishlist"]
        s.profile_pending = prof["pending"]
        s.profile_loaded_at = self.clock()

    def refresh_profile(self) -> None:
        """Ask again for a profile the edge had not received from central yet; give up
        after :data:`PROFILE_RETRIES` (central down: the greeting shows no points).
        Once it is there, ask every :data:`PROFILE_REFRESH_S` while the shopper is
        identified: a web change (points, a withdrawn consent) shows within seconds."""
        s = self.shopper
        if not s.profile_pending:
            if s.identified and self.clock() - s.profile_loaded_at >= PROFILE_REFRESH_S:
                before = (s.points, s.consent, s.points_provisional, s.recent, s.wishlist)
                self._load_profile()
                if (s.points, s.consent, s.points_provisional, s.recent, s.wishlist) != before:
                    self._changed()
            return
        s.profile_retries += 1
        if s.profile_retries > PROFILE_RETRIES:
            s.profile_pending = False
        else:
            self._load_profile()
        self._changed()

    def set_consent(self, granted: bool) -> None:
        self.touch()
        sid = self.shopper.session_id
        if sid is None or not self.shopper.identified:
            return
        if self._store_call(lambda: self.store.consent(sid, granted)) is not None:
            self._load_profile()
        self._changed()

    # -- finding -------------------------------------------------------------------------------
    def type_query(self, text: str) -> None:
        """Search as you type: every keystroke asks the edge."""
        self.touch()
        s = self.shopper
        s.query = text
        if not text.strip() and s.category is None:
            s.results = []
        else:
            found = self._store_call(lambda: self.store.search(text, s.category))
            s.results = found if found is not None else []
        if self.screen not in ("search",):
            self.screen = "search"
        self._changed()

    def browse(self, category: str | None) -> None:
        self.touch()
        self.shopper.category = category
        self.type_query(self.shopper.query)

    def show_search(self) -> None:
        self.touch()
        if not self.categories:
            self.categories = self._store_call(self.store.categories) or []
        self._go("search")

    def open_product(self, gtin: str) -> None:
        self.touch()
        product = self._store_call(lambda: self.store.product(gtin))
        if product is not None:
            self.shopper.product = product
            self.message = None
            self._go("product")

    def add_to_wishlist(self) -> None:
        self.touch()
        s = self.shopper
        if s.product is None or s.session_id is None or not s.identified:
            return
        gtin = s.product["gtin"]
        if self._store_call(lambda: self.store.wishlist_add(s.session_id or "", gtin)):
            self._load_profile()
            self._say("wishlist_added")
            self._changed()

    # -- ordering --------------------------------------------------------------------------------
    def add_to_cart(self, quantity: int = 1) -> None:
        self.touch()
        s = self.shopper
        if s.product is None:
            return
        p = s.product
        line = s.cart.setdefault(p["gtin"], {"gtin": p["gtin"], "name": p["name"],
                                             "unit_price_cents": p["price_cents"],
                                             "currency": p["currency"], "quantity": 0})
        line["quantity"] = min(99, line["quantity"] + quantity)
        s.checkout_id = None  # another cart: another order
        s.collect_store = None  # the store picked may not hold the new line: pick again
        self.message = None
        self._go("cart")

    def show_cart(self) -> None:
        self.touch()
        self._go("cart")

    def remove_from_cart(self, gtin: str) -> None:
        self.touch()
        self.shopper.cart.pop(gtin, None)
        self.shopper.checkout_id = None
        self.shopper.collect_store = None
        self._changed()

    def set_fulfilment(self, kind: str) -> None:
        """Collect here, or home delivery (the address form first, if none yet)."""
        self.touch()
        if kind not in ("click_and_collect", "home_delivery"):
            raise ValueError(kind)
        s = self.shopper
        s.fulfilment = kind
        s.collect_store = None
        s.checkout_id = None
        if kind == "home_delivery" and s.address is None:
            self.show_address()
            return
        self._changed()

    # -- home delivery address ----------------------------------------------------------------
    def show_address(self) -> None:
        self.touch()
        s = self.shopper
        if s.address is not None and not s.address_form:
            s.address_form = dict(s.address)
        self._go("address")

    def address_field(self, name: str, text: str) -> str:
        """A keystroke in the form: what the field keeps (clipped to its rule and cap)."""
        self.touch()
        if name not in ADDRESS_FIELDS:
            raise ValueError(name)
        kept = clip(name, text)
        self.shopper.address_form[name] = kept
        self.shopper.address_errors.pop(name, None)
        return kept

    def submit_address(self) -> bool:
        """"Continue": a valid address becomes the order's, back to the cart; else the
        errors show next to their fields."""
        self.touch()
        s = self.shopper
        checked = validate(s.address_form)
        s.address_errors = dict(checked.errors)
        if checked.address is None:  # the form names each wrong field (no message bar)
            self._changed()
            return False
        s.address, s.fulfilment, s.collect_store = checked.address, "home_delivery", None
        s.checkout_id = None
        self.message = None
        self._go("cart")
        return True

    # -- click & collect in another store --------------------------------------------------------
    def show_stores(self) -> None:
        """The store picker: the edge's stock view for every line of the cart."""
        self.touch()
        s = self.shopper
        if not s.cart:
            return
        views = {}
        for gtin in s.cart:
            view = self._store_call(lambda g=gtin: self.store.stock(g))
            if view is None:
                return  # the edge did not answer: said so on the cart screen
            views[gtin] = view
        s.stores = store_options(views, {g: ln["quantity"] for g, ln in s.cart.items()},
                                 self.store_directory)
        self.message = None
        self._go("stores")

    def pick_store(self, store_id: str) -> None:
        self.touch()
        s = self.shopper
        row = next((r for r in s.stores if r["store_id"] == store_id), None)
        if row is None or not row["available"]:
            return  # not offered, or without the stock: the button is disabled anyway
        s.fulfilment, s.collect_store, s.checkout_id = "click_and_collect", store_id, None
        self._go("cart")

    @property
    def collect_store_name(self) -> str | None:
        sid = self.shopper.collect_store
        if sid is None:
            return None
        return (self.store_directory.get(sid) or {}).get("name") or sid

    def set_use_points(self, use: bool) -> None:
        self.touch()
        self.shopper.use_points = use and self.shopper.identified
        self.shopper.checkout_id = None
        self._changed()

    @property
    def cart_estimate_cents(self) -> int:
        """What the cart shows before ordering; the edge's own total is what is charged."""
        return sum(ln["unit_price_cents"] * ln["quantity"] for ln in self.shopper.cart.values())

    @property
    def pay_estimate_cents(self) -> int:
        """The estimate less the points the shopper chose to spend (1 point = 1 cent)."""
        s = self.shopper
        spend = min(s.points or 0, self.cart_estimate_cents) if s.use_points else 0
        return self.cart_estimate_cents - spend

    @property
    def cart_count(self) -> int:
        return sum(ln["quantity"] for ln in self.shopper.cart.values())

    def checkout(self, address: dict[str, str] | None = None) -> bool:
        """Place the order at the edge, then charge exactly the edge's total, once.

        A second tap on "Pay" (or a retry after a timeout) reuses the same
        ``client_order_id`` and payment key: the same order, the same charge.
        Returns True when the pickup code is on screen.
        """
        self.touch()
        s = self.shopper
        if not s.cart:
            return self.screen == "pickup"  # a second tap on "Pay" after it went through
        if s.order is None or s.checkout_id is None or s.paid:
            s.paid = False
            s.checkout_id = s.checkout_id or f"co-{uuid.uuid4().hex}"
            body: dict[str, Any] = {
                "client_order_id": s.checkout_id,
                "session_id": s.session_id if s.identified else None,
                "lines": [{"gtin": g, "quantity": ln["quantity"]} for g, ln in s.cart.items()],
                "fulfilment": {"type": s.fulfilment}}
            if s.fulfilment == "home_delivery":
                address = address or s.address
                if not address:
                    self.show_address()
                    return False
                body["fulfilment"]["address"] = address
            elif s.collect_store is not None:
                body["fulfilment"]["store_id"] = s.collect_store
            if s.use_points and s.points:
                body["spend_points"] = min(s.points, self.cart_estimate_cents)
            order = self._store_call(lambda: self.store.place_order(body))
            if order is None:
                return False  # edge unreachable or refused: no money taken
            s.order = order
        order = s.order
        if not s.paid and order["total_cents"] > 0:
            try:
                charge = self.payments.charge(order["order_id"], order["total_cents"],
                                              order["currency"])
            except PaymentTimeout:
                try:  # one quiet retry with the same key: never a second charge
                    charge = self.payments.charge(order["order_id"], order["total_cents"],
                                                  order["currency"])
                except PaymentTimeout:
                    self._say("payment_timeout", error=True)
                    self._changed()
                    return False
                except PaymentDeclined:
                    return self._declined(order)
            except PaymentDeclined:
                return self._declined(order)
            s.paid = True
            reply = self._store_call(lambda: self.store.pay_order(order["order_id"], charge.ref,
                                                                  "approved"))
            if reply is not None:
                s.order = reply
        self.message = None
        s.cart = {}  # ordered: a new cart for anything else
        s.checkout_id = None
        self._go("pickup")
        return True

    def _declined(self, order: dict[str, Any]) -> bool:
        self._store_call(lambda: self.store.pay_order(order["order_id"],
                                                      f"declined-{uuid.uuid4().hex[:8]}",
                                                      "declined"))
        self._say("payment_declined", error=True)
        self._changed()
        return False

    @property
    def pickup_payload(self) -> str | None:
        """What the pickup QR encodes: order and code, nothing about the shopper."""
        o = self.shopper.order
        if o is None:
            return None
        return f"VITRINE-PICKUP:{o['order_id']}:{o['pickup_code']}"

    # -- leaving ---------------------------------------------------------------------------------
    def end_session(self, *, tell_edge: bool = True, reason: str = "done") -> None:
        """"I'm done" or timeout: the edge closes the session, the screen forgets the shopper."""
        sid = self.shopper.session_id
        if tell_edge and sid is not None:
            try:
                self.store.end_session(reason)
            except (StoreUnavailable, StoreRefused) as exc:
                # The edge's own idle limit ends it anyway; the screen forgets regardless.
                log.warning("could not end session at the edge: %s", exc)
        self.shopper = ShopperState()
        self.message = None
        self.sessions_ended += 1
        self._go("attract")

    def done(self) -> None:
        self.end_session()

    def tick(self) -> bool:
        """Called every second: end an idle session. Returns True if it ended one."""
        if self.screen == "attract":
            return False
        self.refresh_profile()
        if self.clock() - self.last_touch >= self.idle_timeout_s:
            self.end_session(reason="timeout")
            return True
        return False


def _gtin_from_ndef(ndef_b64: str | None) -> str | None:
    """The product a shelf tag names (GS1 Digital Link in its NDEF), or None."""
    if not ndef_b64:
        return None
    try:
        raw = base64.b64decode(ndef_b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return tag_says(raw).gtin
