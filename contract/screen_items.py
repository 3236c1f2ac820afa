"""What a screen can show: the four kinds of playlist item, parsed and validated.

Items arrive from a playlist file, from the edge (playlist delivery) and from
spotlight commands, so :func:`parse_item` treats its input as hostile: unknown
kinds and fields, wrong types, absurd durations are :class:`ItemError`, never a
crash in the player. Text fields are free (the renderer fits whatever they
hold); an image is an asset id the renderer resolves, and a missing asset
draws a placeholder.

Items carry no customer data: a screen is public. ``parse_item`` refuses the
fields that would identify a shopper (:data:`PERSONAL_FIELDS`), so nothing
that reaches the renderer can put one on a screen.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any

KINDS = ("spotlight", "promotion", "image", "text")
#: Fields that would identify a shopper; never allowed on a screen item.
PERSONAL_FIELDS = frozenset({"customer_id", "session_id", "loyalty_id", "email", "phone",
                             "customer_name"})
MAX_DURATION_S = 3600.0
_GTIN_RE = re.compile(r"^[0-9]{14}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_ASSET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class ItemError(ValueError):
    """A playlist item the player refuses (logged, counted, skipped)."""


@dataclass(frozen=True, slots=True)
class Spotlight:
    """One product, large: what a tap in the zone or a planned spotlight shows."""

    id: str
    gtin: str
    name: str | None = None
    brand: str | None = None
    price_cents: int | None = None
    currency: str | None = None
    was_price_cents: int | None = None
    promo: str | None = None
    image: str | None = None
    stock: int | None = None
    online: bool = False
    duration_s: float = 10.0
    kind: str = "spotlight"


@dataclass(frozen=True, slots=True)
class Promotion:
    id: str
    title: str | None = None
    body: str | None = None
    badge: str | None = None
    image: str | None = None
    duration_s: float = 10.0
    kind: str = "promotion"


@dataclass(frozen=True, slots=True)
class FullImage:
    id: str
    image: str | None = None
    duration_s: float = 10.0
    kind: str = "image"


@dataclass(frozen=True, slots=True)
class Text:
    id: str
    title: str | None = None
    body: str | None = None
    duration_s: float = 10.0
    kind: str = "text"


Item = Spotlight | Promotion | FullImage | Text
_CLASSES: dict[str, type] = {"spotlight": Spotlight, "promotion": Promotion,
                             "image": FullImage, "text": Text}


def _opt_str(data: dict[str, Any], key: str, limit: int = 2000) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ItemError(f"{key} must be a string")
    return value[:limit]


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**9:
        raise ItemError(f"{key} must be an integer from 0 to 10^9")
    return value


def parse_item(data: Any) -> Item:
    """Validate a JSON object into an item; :class:`ItemError` says what is wrong."""
    if not isinstance(data, dict):
        raise ItemError("item must be an object")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _CLASSES:
        raise ItemError(f"unknown item kind {kind!r}")
    cls = _CLASSES[kind]
    personal = PERSONAL_FIELDS & data.keys()
    if personal:
        raise ItemError(f"personal data is not allowed on a screen: {sorted(personal)}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ItemError(f"unknown fields for {kind}: {sorted(unknown)[:5]}")
    item_id = data.get("id")
    if not isinstance(item_id, str) or not 0 < len(item_id) <= 128:
        raise ItemError("id must be a non-empty string of at most 128 characters")
    duration = data.get("duration_s", 10.0)
    if (isinstance(duration, bool) or not isinstance(duration, int | float)
            or not math.isfinite(duration) or not 0 < duration <= MAX_DURATION_S):
        raise ItemError(f"duration_s must be a number in (0, {MAX_DURATION_S:g}]")
    image = _opt_str(data, "image", 128) if "image" in known else None
    if image is not None and not _ASSET_RE.match(image):
        raise ItemError("image must be an asset id")
    common: dict[str, Any] = {"id": item_id, "duration_s": float(duration)}
    if "image" in known:
        common["image"] = image
    if cls is Spotlight:
        gtin = data.get("gtin")
        if not isinstance(gtin, str) or not _GTIN_RE.match(gtin):
            raise ItemError("gtin must be 14 digits")
        currency = _opt_str(data, "currency", 3)
        if currency is not None and not _CURRENCY_RE.match(currency):
            raise ItemError("currency must be an ISO 4217 code")
        online = data.get("online", False)
        if not isinstance(online, bool):
            raise ItemError("online must be a boolean")
        return Spotlight(gtin=gtin, name=_opt_str(data, "name"), brand=_opt_str(data, "brand"),
                         price_cents=_opt_int(data, "price_cents"), currency=currency,
                         was_price_cents=_opt_int(data, "was_price_cents"),
                         promo=_opt_str(data, "promo"), stock=_opt_int(data, "stock"),
                         online=online, **common)
    if cls is Promotion:
        return Promotion(title=_opt_str(data, "title"), body=_opt_str(data, "body"),
                         badge=_opt_str(data, "badge"), **common)
    if cls is Text:
        return Text(title=_opt_str(data, "title"), body=_opt_str(data, "body"), **common)
    return FullImage(**common)


def item_to_dict(item: Item) -> dict[str, Any]:
    """The JSON form :func:`parse_item` reads back (``None`` fields left out)."""
    return {f.name: getattr(item, f.name) for f in fields(item)
            if getattr(item, f.name) is not None}
