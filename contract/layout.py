"""Store layout: the one file, and the one loader, both the device simulator and the edge use.

The firmware simulator uses it to know which devices to start and what shoppers
can tap or scan; the edge node loads the SAME file to seed its registry (tag UID
-> product/shelf/zone, device -> zone). It is deliberately plain JSON with no
derived data, so a store integrator can write one by hand.

Format (``"format": "vitrine-layout/1"``)::

    {
      "format": "vitrine-layout/1",
      "store_id": "store-001",                # MQTT-safe id, as in the topics
      "name": "Vitrine Demo Store",           # optional, display only
      "digital_link_base": "https://id.gs1.org",   # optional, this is the default
      "zones":    [{"id": "shoes", "name": "Shoes"}],
      "products": [{"gtin": "04012345000018",  # GTIN-14, check digit verified
                    "name": "Trail Runner 2", "brand": "Kestrel",
                    "category": "shoes", "price_cents": 8999, "currency": "EUR",
                    "zone": "shoes"}],         # optional: where its shelf labels are
      "devices":  [{"id": "nfc-shoes-01", "kind": "nfc_reader",
                    "zone": "shoes", "shelf": "shoes-A"},    # shelf may be null
                   {"id": "esl-0001", "kind": "shelf_label", "zone": "shoes",
                    "gtin": "04012345000018", "size": "2.9"}],  # labels: product, panel
      "tags":     [{"uid": "04a1b2c3d4e5f6", "gtin": "04012345000018",
                    "zone": "shoes", "shelf": "shoes-A", "ndef": true}],
      "customers": [{"id": "C0001234", "card_uid": "a3f2910c", "has_app": true}]
    }

* ``kind`` is one of ``contract.kinds.DEVICE_KINDS`` (``nfc_reader``, ``qr_scanner``,
  ``camera``, ``kiosk``, ``signage``, ``shelf_label``); ``shelf`` is a free label
  shared by readers and tags on the same shelf (null for devices not on a shelf).
* ``tags`` are NFC stickers on shelf items. With ``"ndef": true`` (the default)
  the tag holds one NDEF URI record, the product's GS1 Digital Link
  ``{digital_link_base}/01/{gtin}``; with ``false`` it holds no NDEF at all
  (blank or locked tags do exist) and only its UID identifies it.
* UIDs are hex, 4/7/10 bytes, compared case-insensitively and stored lower-case,
  as nfcpy reports them and the edge registry keys them.
* ``customers`` are loyalty members; ``card_uid`` is the UID of their loyalty
  card, ``has_app`` whether they can show an app QR code.

:func:`load_layout` validates everything (unique ids, known zones and GTINs,
GTIN check digits, UID syntax) and reports all problems at once.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from .gs1 import gtin_check_digit
from .kinds import DEVICE_KINDS
from .topics import valid_id

FORMAT = "vitrine-layout/1"
#: Shelf label panels (contract.eslabel.SIZES), by diagonal in inches.
LABEL_SIZES = ("2.9", "4.2")
DEFAULT_DIGITAL_LINK_BASE = "https://id.gs1.org"

_HEX_UID = re.compile(r"^(?:[0-9a-f]{8}|[0-9a-f]{14}|[0-9a-f]{20})$")
_CUSTOMER_ID = re.compile(r"^C\d{7}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class LayoutError(ValueError):
    """The layout file is malformed; the message lists every problem found."""


def valid_gtin14(gtin: str) -> bool:
    return (isinstance(gtin, str) and len(gtin) == 14 and gtin.isdigit()
            and gtin_check_digit(gtin[:13]) == int(gtin[13]))


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Product:
    gtin: str
    name: str
    brand: str
    category: str
    price_cents: int
    currency: str
    #: Zone whose shelf labels show this product (optional: tags say where items are).
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    id: str
    kind: str
    zone: str
    shelf: str | None = None
    #: Shelf labels only: the product the label shows, and its panel ("2.9" or "4.2").
    gtin: str | None = None
    size: str | None = None


@dataclass(frozen=True, slots=True)
class Tag:
    uid: str
    gtin: str
    zone: str
    shelf: str | None = None
    ndef: bool = True


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    card_uid: str
    has_app: bool = False


@dataclass
class Layout:
    store_id: str
    zones: list[Zone]
    products: list[Product]
    devices: list[DeviceSpec]
    tags: list[Tag]
    customers: list[Customer]
    name: str = ""
    digital_link_base: str = DEFAULT_DIGITAL_LINK_BASE
    _products: dict[str, Product] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._products = {p.gtin: p for p in self.products}

    def product(self, gtin: str) -> Product:
        return self._products[gtin]

    def digital_link(self, gtin: str) -> str:
        """The GS1 Digital Link URI a tag or shelf label carries for ``gtin``."""
        return f"{self.digital_link_base}/01/{gtin}"

    def devices_in(self, zone: str, kind: str | None = None) -> list[DeviceSpec]:
        return [d for d in self.devices if d.zone == zone and (kind is None or d.kind == kind)]

    def tags_in(self, zone: str) -> list[Tag]:
        return [t for t in self.tags if t.zone == zone]

    def products_in(self, zone: str) -> list[Product]:
        return [p for p in self.products if p.zone == zone]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "store_id": self.store_id,
            "name": self.name,
            "digital_link_base": self.digital_link_base,
            "zones": [asdict(z) for z in self.zones],
            "products": [asdict(p) for p in self.products],
            "devices": [asdict(d) for d in self.devices],
            "tags": [asdict(t) for t in self.tags],
            "customers": [asdict(c) for c in self.customers],
        }


def load_layout(path: str | Path) -> Layout:
    """Read and validate a layout file (the simulator's demo: ``firmware_sim.layout``)."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise LayoutError(f"{path}: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LayoutError(f"{path}: not JSON: {exc}") from None
    return parse_layout(data)


def _records(data: dict[str, Any], key: str, cls: type, errors: list[str]) -> list[Any]:
    out = []
    items = data.get(key, [])
    if not isinstance(items, list):
        errors.append(f"{key}: must be a list")
        return out
    hints = get_type_hints(cls)
    for i, raw in enumerate(items):
        try:
            record = cls(**raw)
        except TypeError as exc:  # not an object, or a missing or unknown field
            errors.append(f"{key}[{i}]: {exc}")
            continue
        # Type-check before any other validation so that it only sees well-typed values.
        wrong = [f.name for f in fields(record)
                 if f.name in hints and (not isinstance(getattr(record, f.name), hints[f.name])
                                         or (hints[f.name] is int
                                             and isinstance(getattr(record, f.name), bool)))]
        if wrong:
            errors.append(f"{key}[{i}]: wrong type for {', '.join(wrong)}")
        else:
            out.append(record)
    return out


def parse_layout(data: dict[str, Any]) -> Layout:
    """Build a :class:`Layout` from decoded JSON, raising :class:`LayoutError` with every issue."""
    if not isinstance(data, dict):
        raise LayoutError("layout must be a JSON object")
    errors: list[str] = []
    if data.get("format", FORMAT) != FORMAT:
        errors.append(f"format: expected {FORMAT!r}, got {data.get('format')!r}")
    store_id = data.get("store_id")
    if not isinstance(store_id, str) or not valid_id(store_id):
        errors.append(f"store_id: invalid {store_id!r}")
    zones = _records(data, "zones", Zone, errors)
    products = _records(data, "products", Product, errors)
    devices = _records(data, "devices", DeviceSpec, errors)
    tags = [Tag(**{**asdict(t), "uid": str(t.uid).lower()})
            for t in _records(data, "tags", Tag, errors)]
    customers = [Customer(**{**asdict(c), "card_uid": str(c.card_uid).lower()})
                 for c in _records(data, "customers", Customer, errors)]
    _check(zones, products, devices, tags, customers, errors)
    if errors:
        raise LayoutError("invalid layout:\n  " + "\n  ".join(errors))
    return Layout(store_id=store_id, zones=zones, products=products, devices=devices, tags=tags,
                  customers=customers, name=data.get("name", ""),
                  digital_link_base=data.get("digital_link_base", DEFAULT_DIGITAL_LINK_BASE))


def _dupes(values: list[object]) -> list[str]:
    return sorted(v for v, n in Counter(map(str, values)).items() if n > 1)


def _check(zones: list[Zone], products: list[Product], devices: list[DeviceSpec],
           tags: list[Tag], customers: list[Customer], errors: list[str]) -> None:
    zone_ids = {z.id for z in zones}
    unique: dict[str, list[object]] = {
        "zone": [z.id for z in zones],
        "product gtin": [p.gtin for p in products],
        "device": [d.id for d in devices],
        "customer": [c.id for c in customers],
        # A card and a product tag with the same UID would be indistinguishable at the edge.
        "uid": [t.uid for t in tags] + [c.card_uid for c in customers],
    }
    for label, ids in unique.items():
        for dup in _dupes(ids):
            errors.append(f"duplicate {label} {dup!r}")
    for z in zones:
        if not isinstance(z.id, str) or not valid_id(z.id):
            errors.append(f"zone {z.id!r}: invalid id")
    gtins = {p.gtin for p in products}
    for p in products:
        if not valid_gtin14(p.gtin):
            errors.append(f"product {p.gtin!r}: not a 14-digit GTIN with a valid check digit")
        if p.zone is not None and p.zone not in zone_ids:
            errors.append(f"product {p.gtin}: unknown zone {p.zone!r}")
        if not isinstance(p.price_cents, int) or p.price_cents < 0:
            errors.append(f"product {p.gtin}: price_cents must be a non-negative integer")
        if not isinstance(p.currency, str) or not _CURRENCY.match(p.currency):
            errors.append(f"product {p.gtin}: currency must be an ISO 4217 code")
    for d in devices:
        if not isinstance(d.id, str) or not valid_id(d.id):
            errors.append(f"device {d.id!r}: invalid id")
        if d.kind not in DEVICE_KINDS:
            errors.append(f"device {d.id}: unknown kind {d.kind!r}")
        if d.zone not in zone_ids:
            errors.append(f"device {d.id}: unknown zone {d.zone!r}")
        if d.kind == "shelf_label":
            if d.gtin not in gtins:
                errors.append(f"device {d.id}: a shelf label needs a known gtin, not {d.gtin!r}")
            if d.size not in (None, *LABEL_SIZES):
                errors.append(f"device {d.id}: size must be one of {', '.join(LABEL_SIZES)}")
        elif d.gtin is not None or d.size is not None:
            errors.append(f"device {d.id}: gtin and size are for shelf labels only")
    for t in tags:
        if not _HEX_UID.match(t.uid):
            errors.append(f"tag {t.uid!r}: uid must be 4, 7 or 10 bytes of hex")
        if t.gtin not in gtins:
            errors.append(f"tag {t.uid}: unknown gtin {t.gtin!r}")
        if t.zone not in zone_ids:
            errors.append(f"tag {t.uid}: unknown zone {t.zone!r}")
    for c in customers:
        if not isinstance(c.id, str) or not _CUSTOMER_ID.match(c.id):
            errors.append(f"customer {c.id!r}: id must look like C0001234")
        if not _HEX_UID.match(c.card_uid):
            errors.append(f"customer {c.id}: card_uid must be 4, 7 or 10 bytes of hex")
