"""Signage and shelf-label benchmark: frame and label cost against raw Pillow, same run.

Keys on the last line:

* ``frame_p50_ms``: ``signage.render.render`` of a landscape spotlight (image,
  promotion, struck price, stock) + JPEG encoding (``signage.encoding``), median
  over 200 frames (text layout included, the product picture's resize memoised
  as in the player); ``raw_frame_p50_ms``: the same canvas drawn with bare
  Pillow calls (fixed font sizes, no fitting) + the same encoding;
* ``label_p50_ms``: ``edge.label_render.render_and_pack`` of a 2.9" promoted
  label (QR, red band, struck price) -> packed planes + hash, median over 500
  renders with distinct prices; ``raw_label_p50_ms``: bare Pillow drawing of
  the same texts on a "P" canvas + ``tobytes`` of the two planes;
* ``label_42_p50_ms``: the 4.2" label with a dithered product picture;
* ``tap_to_frame_p99_ms`` and ``labels_p99_s``: end to end through the broker,
  the edge and the player / simulated labels (``bench.signage_e2e``), or null
  with ``e2e_skipped`` when it cannot run here.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from io import BytesIO

from PIL import Image, ImageDraw

from bench.harness import machine
from contract.eslabel import BLACK, RED, new_canvas, pack
from contract.fonts import font
from contract.screen_items import parse_item
from edge.demo_images import product_picture
from edge.label_render import LabelContent, render_and_pack
from signage.encoding import encode_frame
from signage.profiles import LANDSCAPE
from signage.render import render

GTIN = "04063511002891"


def _p50(samples: list[float]) -> float:
    return round(statistics.median(samples), 3)


def _time(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def frames(n: int = 200) -> dict[str, float]:
    picture = Image.open(BytesIO(product_picture(GTIN, "Trail Runner 2", "Kestrel", "shoes")))
    picture = picture.convert("RGB")
    assets = {"pic": picture}.get

    def ours(i: int) -> None:
        item = parse_item({"kind": "spotlight", "id": f"s{i}", "gtin": GTIN,
                           "name": "Chaussure de trail légère — édition été", "brand": "Kestrel",
                           "price_cents": 11999 - i, "was_price_cents": 14999, "currency": "EUR",
                           "promo": "-20 % cette semaine", "image": "pic", "stock": 12,
                           "online": True})
        encode_frame(render(item, LANDSCAPE, assets))

    fitted = picture.resize((840, 840))

    def raw(i: int) -> None:
        im = Image.new("RGB", LANDSCAPE.size, (18, 24, 38))
        d = ImageDraw.Draw(im)
        d.rectangle((0, 0, 960, 1080), fill=(236, 236, 230))
        im.paste(fitted, (60, 120))
        d.text((1050, 80), "Kestrel", font=font(52), fill=(160, 172, 194))
        d.text((1050, 160), "Chaussure de trail légère", font=font(96, True), fill="white")
        d.text((1050, 500), "-20 % cette semaine", font=font(52, True), fill="white")
        d.text((1050, 640), f"{(11999 - i) / 100:.2f} €", font=font(160, True), fill="yellow")
        d.text((1050, 980), "En stock ici : 12", font=font(44), fill="green")
        encode_frame(im)

    for fn in (ours, raw):  # warm caches (fonts, glyphs) like a running player
        _time(fn, 5)
    ours_ms, raw_ms = _time(ours, n), _time(raw, n)
    return {"frame_p50_ms": _p50(ours_ms), "raw_frame_p50_ms": _p50(raw_ms),
            "frame_ratio": round(_p50(ours_ms) / _p50(raw_ms), 2)}


def labels(n: int = 500) -> dict[str, float]:
    picture = Image.open(BytesIO(product_picture(GTIN, "Trail Runner 2", "Kestrel", "shoes")))

    def ours(i: int) -> None:
        render_and_pack(LabelContent(GTIN, "Trail Runner 2 — été", "Kestrel", 9999 - i, "EUR",
                                     promo="-20 % cette semaine", was_price_cents=11999))

    def ours_42(i: int) -> None:
        render_and_pack(LabelContent(GTIN, "Trail Runner 2 — été", "Kestrel", 9999 - i, "EUR",
                                     promo="-20 %", was_price_cents=11999), "4.2", picture)

    def raw(i: int) -> None:
        im = new_canvas(296, 128)
        d = ImageDraw.Draw(im)
        d.rectangle((0, 0, 295, 21), fill=RED)
        d.text((4, 2), "-20 % cette semaine", font=font(16, True), fill=0)
        d.text((4, 26), "Kestrel", font=font(12), fill=BLACK)
        d.text((4, 40), "Trail Runner 2 — été", font=font(18, True), fill=BLACK)
        d.text((4, 80), f"{(9999 - i) / 100:.2f} €", font=font(40, True), fill=RED)
        pack(im)

    for fn in (ours, ours_42, raw):
        _time(fn, 5)
    ours_ms, raw_ms, big_ms = _time(ours, n), _time(raw, n), _time(ours_42, n // 5)
    return {"label_p50_ms": _p50(ours_ms), "raw_label_p50_ms": _p50(raw_ms),
            "label_ratio": round(_p50(ours_ms) / _p50(raw_ms), 2),
            "label_42_p50_ms": _p50(big_ms)}


def main() -> None:
    result: dict[str, object] = {}
    result.update(frames())
    result.update(labels())
    try:
        from bench.signage_e2e import run as run_e2e
    except ImportError as exc:
        result.update(tap_to_frame_p99_ms=None, labels_p99_s=None,
                      e2e_skipped=f"end-to-end part unavailable: {exc}")
    else:
        result.update(run_e2e())
    result["machine"] = machine()
    print(json.dumps(result, ensure_ascii=False))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
