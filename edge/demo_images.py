"""Product pictures for the demo store, drawn with Pillow: no network, no stock photos.

Each product gets a deterministic picture from its GTIN and category (a
coloured backdrop, a simple silhouette, the brand written on it), encoded as
JPEG, so the demo's screens and 4.2" labels show something recognisable and
every run produces the same asset ids.
"""

from __future__ import annotations

import hashlib
from io import BytesIO

from PIL import Image, ImageDraw

from contract.fonts import font

SIZE = (800, 800)


def product_picture(gtin: str, name: str, brand: str | None, category: str | None) -> bytes:
    digest = hashlib.sha256(gtin.encode()).digest()
    hue = digest[0]
    bg = (200 + digest[1] % 50, 200 + digest[2] % 50, 200 + digest[3] % 50)
    fg = (hue % 160 + 40, digest[4] % 160 + 40, digest[5] % 160 + 40)
    im = Image.new("RGB", SIZE, bg)
    draw = ImageDraw.Draw(im)
    kind = (category or name or "").lower()
    if "shoe" in kind or "chauss" in kind or "runner" in kind:
        draw.rounded_rectangle((120, 420, 700, 560), radius=60, fill=fg)
        draw.polygon([(160, 430), (330, 250), (460, 250), (520, 430)], fill=fg)
        draw.rectangle((120, 540, 700, 590), fill=(40, 40, 40))
    elif "bag" in kind or "sac" in kind:
        draw.rounded_rectangle((180, 300, 620, 640), radius=40, fill=fg)
        draw.arc((280, 160, 520, 400), 180, 360, fill=(40, 40, 40), width=24)
    else:
        draw.ellipse((180, 180, 620, 620), fill=fg)
        draw.ellipse((300, 300, 500, 500), fill=bg)
    label = (brand or name or "")[:16]
    draw.text((60, 690), label, font=font(56, bold=True), fill=(40, 40, 40))
    out = BytesIO()
    im.save(out, "JPEG", quality=80)
    return out.getvalue()
