"""Deterministic items and images for the signage tests (no files, no network)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from contract.screen_items import Item, parse_item

GTIN = "04063511002891"


def product_image() -> Image.Image:
    """A drawn "product": deterministic, with edges that show a bad resize or crop."""
    im = Image.new("RGB", (800, 600), (242, 140, 40))
    draw = ImageDraw.Draw(im)
    draw.ellipse((150, 80, 650, 520), fill=(40, 90, 200))
    draw.rectangle((0, 560, 800, 600), fill=(20, 20, 20))
    return im


ASSETS = {"shoe": product_image()}


def assets(asset_id: str) -> Image.Image | None:
    return ASSETS.get(asset_id)


def spotlight(**overrides: object) -> Item:
    data: dict[str, object] = {
        "kind": "spotlight", "id": "spot-1", "gtin": GTIN,
        "name": "Chaussure de trail légère — édition été", "brand": "Kestrel",
        "price_cents": 11999, "was_price_cents": 14999, "currency": "EUR",
        "promo": "-20 % cette semaine", "image": "shoe", "stock": 12, "online": True}
    data.update(overrides)
    return parse_item({k: v for k, v in data.items() if v is not None})
