"""Simulated shoppers: where they walk, what they pick up, how they identify.

Pure behaviour, no MQTT: a :class:`ShopperPlanner` turns a seeded RNG into a
journey, an iterator of :class:`Step` with delays in *simulated* seconds. The
fleet schedules the steps (dividing delays by its speed factor) and turns them
into device messages. Keeping behaviour separate from transport makes journeys
reproducible and testable without a broker.

A journey: arrive at the entrance, visit 2-5 shopping zones (walk, dwell for a
minute or three, pick up 0-3 products: tap the item's tag on the shelf's NFC
reader or scan its shelf label on a QR scanner), then usually the checkout.
About a quarter of shoppers are loyalty members who identify once: a card tap
on a reader, or the app's QR code shown to a scanner or camera. Members who use
the app also pick up most products *with* it ("scan & save"): the phone taps
the shelf reader presenting the product and an app token in one NFC read, or
shows the scanner an app QR code whose signed token names the product. Those
reads carry their identity; every other read is anonymous, whoever made it
(docs/protocol.md section 9). When the fleet runs the store's kiosks, half the app
users start at one: they identify with the app's QR code, check one to three
products on its scanner, and press "I'm done" (or walk away and let the kiosk time
out): the kiosk session the protocol credits to them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from contract.layout import Customer, DeviceSpec, Layout, Product, Tag

#: Share of shoppers who identify with the loyalty program.
IDENTIFIED_SHARE = 0.25
#: Share of those with the app who use it rather than their card.
APP_PREFERENCE = 0.6
#: Share of an app user's product picks made with the app rather than anonymously.
APP_SCAN_SHARE = 0.7
#: Share of app users who start at a kiosk when one is running.
KIOSK_SHARE = 0.5
#: Share of kiosk users who walk away instead of pressing "I'm done".
KIOSK_WALK_AWAY = 0.3
#: Device-facing actions (what the edge sees), as opposed to walking.
DEVICE_ACTIONS = ("tap", "scan", "identify")
#: Actions at a kiosk (one shopper at a time; the fleet keeps who is using it).
KIOSK_ACTIONS = ("kiosk_identify", "kiosk_scan", "kiosk_done", "kiosk_walk_away")


@dataclass(frozen=True)
class Step:
    """One thing a shopper does, ``after_s`` simulated seconds after their previous step."""

    after_s: float
    action: str  # enter | zone | wait | tap | scan | identify | leave
    zone: str | None = None
    device_id: str | None = None
    tag: Tag | None = None
    product: Product | None = None
    #: For scans: "qr" (Digital Link QR), "gs1qr" (GS1 element string QR), "ean" (EAN-13).
    label: str | None = None
    #: For identify: "card" or "app".
    method: str | None = None
    #: For tap/scan: the product is picked with the shopper's app (the read carries their
    #: identity: a phone tap, or an app QR code naming the product).
    with_app: bool = False


@dataclass(frozen=True)
class Shopper:
    id: str
    customer: Customer | None = None
    #: "card" or "app" for loyalty members, None for anonymous shoppers.
    method: str | None = None

    @property
    def name(self) -> str:
        return f"{self.id} ({self.customer.id})" if self.customer else self.id


class ShopperPlanner:
    """Plans journeys over the devices that are actually running."""

    def __init__(self, layout: Layout, active_devices: Iterable[str],
                 *, identified_share: float = IDENTIFIED_SHARE) -> None:
        self.layout = layout
        active = set(active_devices)
        self.devices = [d for d in layout.devices if d.id in active]
        self.identified_share = identified_share
        zone_ids = [z.id for z in layout.zones]
        self.entrance = "entrance" if "entrance" in zone_ids else None
        self.checkout = "checkout" if "checkout" in zone_ids else None
        self.shopping_zones = [
            z for z in zone_ids
            if z not in (self.entrance, self.checkout)
            and ((self._in(z, "nfc_reader") and layout.tags_in(z))
                 or (self._in(z, "qr_scanner") and self._products(z)))
        ]

    def _in(self, zone: str | None, kind: str) -> list[DeviceSpec]:
        return [d for d in self.devices if d.zone == zone and d.kind == kind]

    def _products(self, zone: str) -> list[Product]:
        products = self.layout.products_in(zone)
        if not products:  # products without a zone: whatever is tagged there
            products = [self.layout.product(g) for g in
                        dict.fromkeys(t.gtin for t in self.layout.tags_in(zone))]
        return products

    def new_shopper(self, index: int, rng: random.Random) -> Shopper:
        sid = f"S{index:04d}"
        if not self.layout.customers or rng.random() >= self.identified_share:
            return Shopper(sid)
        customer = rng.choice(self.layout.customers)
        method = "app" if customer.has_app and rng.random() < APP_PREFERENCE else "card"
        return Shopper(sid, customer, method)

    def journey(self, shopper: Shopper, rng: random.Random) -> Iterator[Step]:
        """The shopper's steps; identification happens at the first device that can take it."""
        state = {"identified": shopper.customer is None}
        yield Step(0.0, "enter", zone=self.entrance)
        kiosks = [d for d in self.devices if d.kind == "kiosk"]
        if kiosks and shopper.method == "app" and rng.random() < KIOSK_SHARE:
            yield from self._kiosk(rng.choice(kiosks), rng)
            state["identified"] = True
        if self.entrance and shopper.method == "card" and rng.random() < 0.5:
            yield from self._identify(shopper, self.entrance, rng, state, rng.uniform(3, 10))
        k = min(len(self.shopping_zones), rng.randint(2, 5))
        for zone in rng.sample(self.shopping_zones, k):
            yield from self._visit(shopper, zone, rng, state)
        if self.checkout and rng.random() < 0.8:
            yield from self._checkout(shopper, rng, state)
        yield Step(rng.uniform(10, 30), "leave", zone=self.entrance or self.checkout)

    def _kiosk(self, kiosk: DeviceSpec, rng: random.Random) -> Iterator[Step]:
        """Identify at a kiosk, check products on its scanner, then leave it."""
        yield Step(rng.uniform(5, 20), "kiosk_identify", zone=kiosk.zone, device_id=kiosk.id,
                   method="app")
        for _ in range(rng.randint(1, 3)):
            yield Step(rng.uniform(5, 15), "kiosk_scan", zone=kiosk.zone, device_id=kiosk.id,
                       product=rng.choice(self.layout.products), label="qr")
        end = "kiosk_walk_away" if rng.random() < KIOSK_WALK_AWAY else "kiosk_done"
        yield Step(rng.uniform(3, 10), end, zone=kiosk.zone, device_id=kiosk.id)

    def _identify(self, shopper: Shopper, zone: str, rng: random.Random,
                  state: dict[str, bool], after_s: float) -> Iterator[Step]:
        if state["identified"]:
            return
        if shopper.method == "card":
            devices = self._in(zone, "nfc_reader")
        else:
            devices = self._in(zone, "qr_scanner") + self._in(zone, "camera")
        if devices:
            state["identified"] = True
            yield Step(after_s, "identify", zone=zone, device_id=rng.choice(devices).id,
                       method=shopper.method)

    def _pick(self, zone: str, rng: random.Random, after_s: float,
              shopper: Shopper | None = None) -> Step | None:
        readers, scanners = self._in(zone, "nfc_reader"), self._in(zone, "qr_scanner")
        tags, products = self.layout.tags_in(zone), self._products(zone)
        use_scanner = scanners and products and (not (readers and tags) or rng.random() < 0.3)
        if use_scanner:
            product = rng.choice(products)
            label = rng.choices(("qr", "ean", "gs1qr"), (0.6, 0.3, 0.1))[0]
            if label == "ean" and not product.gtin.startswith("0"):
                label = "qr"  # only GTIN-13 and shorter fit an EAN-13
            return Step(after_s, "scan", zone=zone, device_id=rng.choice(scanners).id,
                        product=product, label=label, with_app=self._with_app(shopper, rng))
        if readers and tags:
            tag = rng.choice(tags)
            same_shelf = [r for r in readers if r.shelf == tag.shelf]
            reader = rng.choice(same_shelf or readers)
            return Step(after_s, "tap", zone=zone, device_id=reader.id, tag=tag,
                        product=self.layout.product(tag.gtin),
                        with_app=self._with_app(shopper, rng))
        return None

    @staticmethod
    def _with_app(shopper: Shopper | None, rng: random.Random) -> bool:
        # Only app users draw: anonymous and card shoppers' journeys stay as they were.
        return (shopper is not None and shopper.method == "app"
                and rng.random() < APP_SCAN_SHARE)

    def _visit(self, shopper: Shopper, zone: str, rng: random.Random,
               state: dict[str, bool]) -> Iterator[Step]:
        yield Step(rng.uniform(10, 40), "zone", zone=zone)
        dwell = rng.uniform(30, 180)
        n = rng.choices((0, 1, 2, 3), (0.25, 0.35, 0.25, 0.15))[0]
        spent = 0.0
        for i in range(n):
            gap = rng.uniform(5, max(6.0, dwell / (n + 1)))
            if i == 0 and not state["identified"]:
                for step in self._identify(shopper, zone, rng, state, gap):
                    spent += step.after_s
                    yield step
                    gap = rng.uniform(3, 10)
            step = self._pick(zone, rng, gap, shopper)
            if step is not None:
                spent += gap
                yield step
        # The rest of the dwell time passes before the walk to the next zone.
        if dwell > spent:
            yield Step(dwell - spent, "wait", zone=zone)

    def _checkout(self, shopper: Shopper, rng: random.Random,
                  state: dict[str, bool]) -> Iterator[Step]:
        zone = self.checkout
        assert zone is not None
        yield Step(rng.uniform(10, 40), "zone", zone=zone)
        yield from self._identify(shopper, zone, rng, state, rng.uniform(5, 20))
        if rng.random() < 0.3:
            step = self._pick(zone, rng, rng.uniform(5, 20), shopper)
            if step is not None:
                yield step
        cameras = self._in(zone, "camera")
        if cameras and self._products(zone) and rng.random() < 0.2:
            # Price check: the shopper holds an item's label up to the checkout camera.
            product = rng.choice(self._products(zone))
            yield Step(rng.uniform(5, 15), "scan", zone=zone, device_id=cameras[0].id,
                       product=product, label="qr")

    def expected_events(self, samples: int = 300, seed: int | str = "estimate") -> float:
        """Mean device events per shopper, estimated from sample journeys (for ``rate``)."""
        rng = random.Random(seed)
        total = 0
        for i in range(samples):
            shopper = self.new_shopper(i, rng)
            total += sum(s.action in DEVICE_ACTIONS for s in self.journey(shopper, rng))
        return max(total / samples, 0.1)
