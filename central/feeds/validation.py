"""Validation of admin feed loads: a bad row refuses the whole load, with its reason.

Unlike event ingest (where one bad event must not block the others), a
catalogue or price list is loaded as a unit: half a price list applied would
show customers inconsistent prices, so the load is all or nothing.
"""

from __future__ import annotations

import json
from typing import Any

import fastjsonschema

from central.errors import BadRequest

_GTIN = {"type": "string", "pattern": "^[0-9]{14}$"}
_ID = {"type": "string", "pattern": "^[A-Za-z0-9*][A-Za-z0-9_.-]{0,63}$"}
_TEXT = {"type": ["string", "null"], "maxLength": 500}
_TIME = {"type": "number", "minimum": 0, "maximum": 1e11}

#: What screens and labels show around a price (edge/content_feed.py): the promotion
#: label, the previous price struck through, pictures by id (``PUT /admin/media``).
CONTENT_KEYS = ("promo", "was_price_cents", "images")
_PRODUCT = {"type": "object", "required": ["gtin", "name"], "additionalProperties": False,
            "properties": {"gtin": _GTIN, "name": {"type": "string", "minLength": 1,
                                                   "maxLength": 500},
                           "brand": _TEXT, "category": _TEXT,
                           "promo": {"type": ["string", "null"], "maxLength": 200},
                           "was_price_cents": {"type": ["integer", "null"], "minimum": 0,
                                               "maximum": 10**10},
                           "images": {"type": "array", "maxItems": 8, "items": {
                               "type": "string", "pattern": "^[0-9a-f]{64}$"}}}}
_PRICE_KEY = {"store_id": _ID, "gtin": _GTIN, "kind": {"enum": ["regular", "promo"]},
              "valid_from": _TIME}
_PRICE = {"type": "object", "required": ["gtin", "price_cents"], "additionalProperties": False,
          "properties": {**_PRICE_KEY, "valid_to": {"type": ["number", "null"], "minimum": 0,
                                                       "maximum": 1e11},
                         "price_cents": {"type": "integer", "minimum": 0,
                                         "maximum": 10**10},
                         "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                         "label": _TEXT}}
_STOCK = {"type": "object", "required": ["location", "gtin", "quantity"],
          "additionalProperties": False,
          "properties": {"location": _ID, "gtin": _GTIN,
                         "quantity": {"type": "integer", "minimum": -10**9, "maximum": 10**9},
                         "observed_at": _TIME}}


def _body(items: dict[str, Any], deletes: dict[str, Any] | None) -> dict[str, Any]:
    props: dict[str, Any] = {"items": {"type": "array", "maxItems": 100_000, "items": items}}
    if deletes:
        props["delete"] = {"type": "array", "maxItems": 100_000, "items": deletes}
    return {"type": "object", "required": ["items"], "additionalProperties": False,
            "properties": props}


_VALIDATORS = {
    "catalogue": fastjsonschema.compile(_body(_PRODUCT, {"type": "object", "required": ["gtin"],
                                                         "properties": {"gtin": _GTIN}})),
    "prices": fastjsonschema.compile(_body(_PRICE, {"type": "object", "required": ["gtin"],
                                                    "properties": _PRICE_KEY})),
    "stock": fastjsonschema.compile(_body(_STOCK, None)),
}


def _price_defaults(item: dict[str, Any]) -> dict[str, Any]:
    out = {"store_id": "*", "kind": "regular", "valid_from": 0.0, "valid_to": None,
           "currency": "EUR", "label": None, **item}
    out["valid_from"] = float(out["valid_from"])
    if out["valid_to"] is not None and out["valid_to"] <= out["valid_from"]:
        raise BadRequest(f"prices: valid_to must be after valid_from for {item['gtin']}")
    return out


def parse_load(feed: str, body: Any, now: float) -> tuple[list[dict[str, Any]],
                                                         list[dict[str, Any]]]:
    """``(upserts, deletes)`` of a load body ``{"items": [...], "delete": [...]}``."""
    try:
        _VALIDATORS[feed](body)
    except fastjsonschema.JsonSchemaException as exc:
        raise BadRequest(f"{feed}: {exc.message}") from None
    items = [dict(i) for i in body["items"]]
    deletes = [dict(d) for d in body.get("delete", [])]
    if feed == "prices":
        items = [_price_defaults(i) for i in items]
        deletes = [{"store_id": "*", "kind": "regular", **d,
                    "valid_from": float(d.get("valid_from", 0.0))} for d in deletes]
    elif feed == "stock":
        items = [{**i, "observed_at": float(i.get("observed_at", now))} for i in items]
    else:
        items = [_catalogue_item(i) for i in items]
    return items, deletes


def _catalogue_item(item: dict[str, Any]) -> dict[str, Any]:
    """Content keys folded into one JSON column; None when the item carries none of them
    (the feed then says nothing about content and a store keeps its own)."""
    content = {k: item.pop(k) for k in CONTENT_KEYS if k in item}
    if content:
        content = {"promo": content.get("promo"),
                   "was_price_cents": content.get("was_price_cents"),
                   "images": list(dict.fromkeys(content.get("images") or []))}
    return {"brand": None, "category": None, **item,
            "content": json.dumps(content, separators=(",", ":")) if content else None}
