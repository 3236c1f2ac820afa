"""Render the signage and label screenshots shown in README.md (docs/img/).

    .venv/bin/python scripts/signage_screenshots.py

Frames come from the same code a screen and the label service run
(``signage.render``, ``edge.label_render``), with the demo's Pillow-drawn
product picture; nothing is retouched.
"""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

from PIL import Image

from contract.eslabel import to_image
from contract.playlists import load_playlists
from contract.screen_items import parse_item
from edge.demo_images import product_picture
from edge.label_render import LabelContent, render_and_pack
from signage.encoding import encode_frame
from signage.profiles import LANDSCAPE, PORTRAIT
from signage.render import render

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
GTIN = "04063511002891"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    picture = Image.open(BytesIO(product_picture(GTIN, "Trail Runner 2", "Kestrel",
                                                 "running shoes"))).convert("RGB")
    assets = {"trail": picture}.get
    spot = parse_item({"kind": "spotlight", "id": "tap", "gtin": GTIN,
                       "name": "Trail Runner 2 — chaussure de trail légère", "brand": "Kestrel",
                       "price_cents": 9599, "was_price_cents": 11999, "currency": "EUR",
                       "promo": "-20 % cette semaine", "image": "trail", "stock": 7,
                       "online": True})
    (OUT / "signage_spotlight_landscape.jpg").write_bytes(
        encode_frame(render(spot, LANDSCAPE, assets)))
    playlists = load_playlists((ROOT / "signage" / "examples" /
                                "demo_playlists.json").read_bytes())
    promo = next(i for p in playlists.playlists for i in p.items if i.kind == "promotion")
    (OUT / "signage_playlist_portrait.jpg").write_bytes(
        encode_frame(render(promo, PORTRAIT, assets)))
    label = render_and_pack(LabelContent(GTIN, "Trail Runner 2", "Kestrel", 9599, "EUR",
                                         promo="-20 % cette semaine", was_price_cents=11999),
                            "2.9")
    big = to_image(label)
    big.resize((big.width * 2, big.height * 2), Image.Resampling.NEAREST).save(
        OUT / "label_296x128.png", optimize=True)
    label42 = render_and_pack(LabelContent(GTIN, "Trail Runner 2", "Kestrel", 9599, "EUR",
                                           promo="-20 %", was_price_cents=11999), "4.2",
                              picture)
    to_image(label42).save(OUT / "label_400x300.png", optimize=True)
    print(json.dumps(sorted(p.name for p in OUT.iterdir())))


if __name__ == "__main__":
    main()
