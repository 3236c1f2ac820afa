"""The kiosk's screens: one class here and one ``.kv`` file each (layout and style).

A screen only shows :class:`kiosk.flow.KioskFlow` state and forwards touches to
it; :meth:`KioskScreen.refresh` rebuilds what depends on the shopper from the
flow, so after "I'm done" every screen is rebuilt from an empty shopper.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import segno
from kivy.core.image import Image as CoreImage
from kivy.graphics import Color, Line, Rectangle
from kivy.lang import Builder
from kivy.metrics import dp
from kivy.properties import ListProperty, ObjectProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen
from kivy.uix.textinput import TextInput
from kivy.uix.widget import Widget

from ..address import FIELDS as ADDRESS_FIELDS
from ..address import one_line
from ..flow import KioskFlow
from ..i18n import money, points_line, tr
from ..images import ImageCache

KV_DIR = Path(__file__).parent
#: Load order: shared widgets first, then one file per screen.
KV_FILES = ("widgets.kv", "attract.kv", "greeting.kv", "search.kv", "product.kv", "cart.kv",
            "address.kv", "stores.kv", "pickup.kv")


def load_kv() -> None:
    for name in KV_FILES:
        path = str(KV_DIR / name)
        Builder.unload_file(path)
        Builder.load_file(path)


class BigButton(ButtonBehavior, Label):
    """A touch target of at least 96 dp: readable and hittable from a metre away."""

    bg = ListProperty([0.13, 0.37, 0.75, 1])


class ProductRow(ButtonBehavior, BoxLayout):
    """One result or history line: name, brand, price; a tap opens the product."""

    gtin = StringProperty("")
    title = StringProperty("")
    subtitle = StringProperty("")
    price = StringProperty("")


class StoreMap(Widget):
    """A small plan of the store's zones with the product's zone highlighted."""

    zones = ListProperty([])
    highlight = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(pos=self.redraw, size=self.redraw, zones=self.redraw, highlight=self.redraw)

    def redraw(self, *_: Any) -> None:
        self.canvas.clear()
        self.clear_widgets()
        zones = list(self.zones) or ([self.highlight] if self.highlight else [])
        if not zones:
            return
        cols = min(len(zones), 3)
        rows = (len(zones) + cols - 1) // cols
        w, h = self.width / cols, self.height / rows
        with self.canvas:
            for i, zone in enumerate(zones):
                x = self.x + (i % cols) * w
                y = self.top - (i // cols + 1) * h
                on = zone == self.highlight
                Color(*((0.98, 0.75, 0.18, 1) if on else (0.88, 0.9, 0.93, 1)))
                Rectangle(pos=(x + dp(4), y + dp(4)), size=(w - dp(8), h - dp(8)))
                Color(0.3, 0.3, 0.35, 1)
                Line(rectangle=(x + dp(4), y + dp(4), w - dp(8), h - dp(8)), width=1.2)
        for i, zone in enumerate(zones):
            self.add_widget(Label(text=zone, color=(0.1, 0.1, 0.1, 1), font_size="20sp",
                                 bold=zone == self.highlight,
                                 pos=(self.x + (i % cols) * w, self.top - (i // cols + 1) * h),
                                 size=(w, h)))


def qr_texture(payload: str) -> Any:
    """The pickup code as a texture (segno renders, Kivy shows)."""
    buf = BytesIO()
    segno.make(payload, error="m").save(buf, kind="png", scale=10, border=2)
    buf.seek(0)
    return CoreImage(buf, ext="png").texture


class StoreRow(ButtonBehavior, BoxLayout):
    """One store in the picker: name, distance, stock; only stores with the stock respond."""

    store_id = StringProperty("")
    title = StringProperty("")
    subtitle = StringProperty("")
    stock = StringProperty("")


class KioskScreen(Screen):
    """Base of every screen: knows the flow, rebuilds itself from it."""

    flow: KioskFlow | None = ObjectProperty(None, allownone=True)
    #: Product pictures on the kiosk's disk (``kiosk/images.py``); None: placeholders only.
    images: ImageCache | None = None

    def refresh(self, flow: KioskFlow) -> None:
        """Show ``flow``'s state; subclasses fill in their dynamic parts."""

    def on_leave(self, *_: Any) -> None:
        """Give up the keyboard: a docked on-screen keyboard (``--touch-keyboard``) left
        up by a field on a screen the shopper left would cover the next one."""
        for w in self.walk(restrict=True):
            if isinstance(w, TextInput) and w.focus:
                w.focus = False

    def t(self, key: str, **params: Any) -> str:
        assert self.flow is not None
        return tr(key, self.flow.lang, **params)

    def money(self, cents: int | None, currency: str = "EUR") -> str:
        assert self.flow is not None
        return money(cents, self.flow.lang, currency)

    def product_rows(self, box: Any, products: list[dict[str, Any]]) -> None:
        box.clear_widgets()
        for p in products:
            box.add_widget(ProductRow(
                gtin=p["gtin"], title=p["name"], subtitle=p.get("brand") or "",
                price=self.money(p.get("price_cents"), p.get("currency") or "EUR")))


class AttractScreen(KioskScreen):
    promo = StringProperty("")
    _n = 0

    def next_promo(self) -> None:
        if self.flow is None:
            return
        self._n = (self._n % 3) + 1
        self.promo = self.t(f"attract_promo_{self._n}")

    def refresh(self, flow: KioskFlow) -> None:
        self.promo = tr(f"attract_promo_{self._n or 1}", flow.lang)


class GreetingScreen(KioskScreen):
    points_text = StringProperty("")

    def refresh(self, flow: KioskFlow) -> None:
        s = flow.shopper
        self.points_text = points_line(s.points, s.points_provisional, flow.lang)
        self.product_rows(self.ids.recent, s.recent)
        self.product_rows(self.ids.wishlist, s.wishlist)


class SearchScreen(KioskScreen):
    def refresh(self, flow: KioskFlow) -> None:
        s = flow.shopper
        if self.ids.query.text != s.query:
            self.ids.query.text = s.query
        if self.ids.results.children and [c.gtin for c in reversed(self.ids.results.children)
                                          ] == [r["gtin"] for r in s.results]:
            pass  # same results: keep the rows (and where the shopper scrolled to)
        else:
            self.product_rows(self.ids.results, s.results)
            self.ids.scroller.scroll_y = 1  # new results start at the top
        self.ids.none.opacity = 1 if (s.query.strip() and not s.results) else 0
        cats = self.ids.categories
        cats.clear_widgets()
        for c in flow.categories[:8]:
            b = BigButton(text=c["category"], font_size="20sp",
                          bg=[0.2, 0.55, 0.35, 1] if s.category == c["category"]
                          else [0.45, 0.47, 0.5, 1])
            b.bind(on_release=lambda _b, cat=c["category"]: self._browse(cat))
            cats.add_widget(b)

    def _browse(self, category: str) -> None:
        assert self.flow is not None
        current = self.flow.shopper.category
        self.flow.browse(None if current == category else category)


class ProductScreen(KioskScreen):
    name_text = StringProperty("")
    price_text = StringProperty("")
    promo_text = StringProperty("")
    where_text = StringProperty("")
    stock_text = StringProperty("")
    zone = StringProperty("")
    zones = ListProperty([])
    #: The main picture's asset id, and its file once on the kiosk's disk ("" meanwhile:
    #: the placeholder shows).
    image_id = StringProperty("")
    image_source = StringProperty("")

    def refresh(self, flow: KioskFlow) -> None:
        p = flow.shopper.product
        if p is None:
            self.name_text = self.price_text = self.promo_text = ""
            self.where_text = self.stock_text = self.zone = ""
            self.image_id = self.image_source = ""
            return
        ids = p.get("images") or []
        self.image_id = ids[0] if ids else ""
        path = self.images.path(self.image_id) if self.images is not None else None
        self.image_source = str(path) if path is not None else ""
        lang = flow.lang
        cur = p.get("currency") or "EUR"
        self.name_text = f"{p['name']}\n[size=22sp]{p.get('brand') or ''}[/size]"
        self.price_text = money(p["price_cents"], lang, cur)
        promo = p.get("promotion")
        self.promo_text = (f"{promo['label']} · "
                           + tr("promo_was", lang, price=money(promo["regular_price_cents"],
                                                               lang, cur))
                           if promo and promo.get("regular_price_cents") else "")
        loc = p.get("location")
        self.zone = (loc or {}).get("zone") or ""
        self.where_text = (tr("where", lang, zone=loc["zone"], shelf=loc["shelf"] or "—")
                           if loc else tr("not_here", lang))
        st = p["stock"]
        others = sum(st["other_stores"].values())
        self.stock_text = "\n".join([
            tr("stock_here", lang, n=st["this_store"] if st["this_store"] is not None else "—"),
            tr("stock_other", lang, n=others),
            tr("stock_web", lang, n=st["web_warehouse"] if st["web_warehouse"] is not None
               else "—")])


class CartScreen(KioskScreen):
    total_text = StringProperty("")
    fulfilment_text = StringProperty("")

    def refresh(self, flow: KioskFlow) -> None:
        box = self.ids.lines
        box.clear_widgets()
        for line in flow.shopper.cart.values():
            box.add_widget(ProductRow(
                gtin=line["gtin"], title=f"{line['quantity']} × {line['name']}",
                price=money(line["unit_price_cents"] * line["quantity"], flow.lang,
                            line["currency"])))
        self.total_text = tr("total", flow.lang, price=money(flow.cart_estimate_cents, flow.lang))
        s = flow.shopper
        if s.fulfilment == "home_delivery" and s.address is not None:
            self.fulfilment_text = tr("deliver_to", flow.lang, address=one_line(s.address))
        elif flow.collect_store_name is not None:
            self.fulfilment_text = tr("collect_at", flow.lang, store=flow.collect_store_name)
        else:
            self.fulfilment_text = tr("collect_here_note", flow.lang)


class AddressScreen(KioskScreen):
    """The home delivery form: capped fields, wrong ones tinted red and named in one line."""

    errors_text = StringProperty("")
    #: A field's background: normal, and when its content is wrong.
    OK_BG = (1, 1, 1, 1)
    BAD_BG = (1, 0.86, 0.85, 1)

    def refresh(self, flow: KioskFlow) -> None:
        s = flow.shopper
        for name in ADDRESS_FIELDS:
            box = self.ids[f"f_{name}"]
            want = s.address_form.get(name, "")
            if box.text != want:
                box.text = want
            box.background_color = self.BAD_BG if name in s.address_errors else self.OK_BG
        self.errors_text = " · ".join(
            f"{tr('address_' + name, flow.lang)}: {tr(key, flow.lang)}"
            for name, key in s.address_errors.items())

    def typed(self, name: str, box: Any) -> None:
        if self.flow is None:
            return
        kept = self.flow.address_field(name, box.text)
        if kept != box.text:  # over the cap, a pasted newline, a letter in a postcode
            box.text = kept
        box.background_color = self.OK_BG

    def next_field(self, name: str) -> None:
        """The keyboard's "enter" moves to the next field (the last one submits)."""
        order = list(ADDRESS_FIELDS)
        i = order.index(name)
        if i + 1 < len(order):
            self.ids[f"f_{order[i + 1]}"].focus = True
        elif self.flow is not None:
            self.flow.submit_address()


class StoresScreen(KioskScreen):
    """The store picker: nearest with stock first; the others shown, not choosable."""

    def refresh(self, flow: KioskFlow) -> None:
        box = self.ids.stores
        box.clear_widgets()
        for row in flow.shopper.stores:
            km = row["distance_km"]
            box.add_widget(StoreRow(
                store_id=row["store_id"], title=row["name"],
                subtitle=tr("store_distance", flow.lang, km=f"{km:.1f}") if km is not None
                else "",
                stock=tr("store_in_stock", flow.lang, n=row["quantity"]) if row["available"]
                else tr("store_no_stock", flow.lang),
                disabled=not row["available"]))
        self.ids.none.opacity = 0 if flow.shopper.stores else 1


class PickupScreen(KioskScreen):
    code_text = StringProperty("")
    earned_text = StringProperty("")

    def refresh(self, flow: KioskFlow) -> None:
        order = flow.shopper.order
        if order is None or flow.pickup_payload is None:
            self.code_text = self.earned_text = ""
            self.ids.qr.texture = None
            return
        self.code_text = tr("pickup_code", flow.lang, code=order["pickup_code"])
        self.earned_text = (tr("points_earned", flow.lang, points=order["points_earned"])
                            if order["points_earned"] else "")
        self.ids.qr.texture = qr_texture(flow.pickup_payload)


SCREEN_CLASSES: dict[str, type[KioskScreen]] = {
    "attract": AttractScreen, "greeting": GreetingScreen, "search": SearchScreen,
    "product": ProductScreen, "cart": CartScreen, "address": AddressScreen,
    "stores": StoresScreen, "pickup": PickupScreen}
