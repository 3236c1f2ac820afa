"""Render an e-paper shelf label for a product: the edge's side of the ESL protocol.

The label service (``edge/labels.py``) calls :func:`render_label` whenever what
a label should show changes, packs it with ``contract.eslabel`` and sends the
planes and their hash. Layout, three inks (white, black, red):

* 2.9" (296x128): name (2 lines, bold) and brand on the left, the price large
  below it, the product's GS1 Digital Link QR on the right; a promotion puts a
  red band with its text on top and prints the price in red, the previous
  price struck through beside it;
* 4.2" (400x300): the same, plus the product image, dithered to black and
  white (Floyd-Steinberg), and room for three lines of name.

Text is drawn without anti-aliasing (a "P" canvas: an e-paper pixel is ink or
not) through ``contract.textfit``, so any name fits. The QR code is the
product's Digital Link (``{base}/01/{gtin}``), which a phone opens on the
web's product page and which the store's scanners read as the GTIN.
Render + pack costs ~1-3 ms (``bench.signage``: ``label_p50_ms``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import segno
from PIL import Image, ImageChops, ImageDraw

from contract.eslabel import BLACK, RED, SIZES, WHITE, LabelBitmap, new_canvas, pack
from contract.money import format_price
from contract.textfit import draw_fitted, fit_text

DEFAULT_DIGITAL_LINK_BASE = "https://id.gs1.org"


@dataclass(frozen=True, slots=True)
class LabelContent:
    """Everything a label shows; equal contents give the same bitmap and hash."""

    gtin: str
    name: str | None
    brand: str | None
    price_cents: int | None
    currency: str | None
    promo: str | None = None
    was_price_cents: int | None = None
    image_key: str | None = None  # asset id of the product image (4.2" only)
    digital_link_base: str = DEFAULT_DIGITAL_LINK_BASE

    @property
    def digital_link(self) -> str:
        return f"{self.digital_link_base.rstrip('/')}/01/{self.gtin}"


@lru_cache(maxsize=4096)
def _qr(data: str, scale: int) -> Image.Image:
    """QR code as an ink mask ('1', 1 = dark module), quiet zone of 2 modules, cached."""
    qr = segno.make(data, error="l", micro=False)
    matrix = qr.matrix
    n = len(matrix)
    border = 2
    size = n + 2 * border
    im = Image.new("1", (size, size), 0)
    pixels = im.load()
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                pixels[x + border, y + border] = 1
    return im.resize((size * scale, size * scale), Image.Resampling.NEAREST)


def _paste_qr(canvas: Image.Image, data: str, right: int, top: int, box: int) -> int:
    """Largest integer scale that fits ``box``; returns the QR's left edge."""
    modules = _qr(data, 1).width
    scale = max(1, box // modules)
    qr = _qr(data, scale)
    x = right - qr.width
    canvas.paste(BLACK, (x, top + (box - qr.height) // 2), qr)
    return x


def _dithered(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    """Black mask ('1', 1 = ink) of the image contained in ``box``, Floyd-Steinberg."""
    grey = image.convert("L")
    grey.thumbnail(box, Image.Resampling.BILINEAR)
    return ImageChops.invert(grey.convert("1"))


def _price_block(draw: ImageDraw.ImageDraw, content: LabelContent, x: int, y_bottom: int,
                 width: int, max_size: int) -> None:
    """The price, bottom-aligned at ``y_bottom``: red when promoted, previous price struck."""
    price = format_price(content.price_cents, content.currency)
    if not price:
        return
    promoted = bool(content.promo) or (
        content.was_price_cents is not None and content.price_cents is not None
        and content.was_price_cents > content.price_cents)
    was = None
    if (content.was_price_cents is not None and content.price_cents is not None
            and content.was_price_cents > content.price_cents):
        was = fit_text(format_price(content.was_price_cents, content.currency), width // 3,
                       max_size, max_size=max(10, max_size // 3), min_size=8, max_lines=1)
    reserve = int(was.font.getlength(was.lines[0])) + 6 if was and was.lines else 0
    fitted = fit_text(price, width - reserve, max_size + 4, max_size=max_size, min_size=12,
                      max_lines=1, bold=True)
    top = y_bottom - fitted.line_height
    draw_fitted(draw, fitted, x, top, fill=RED if promoted else BLACK)
    if was is not None and was.lines:
        wx = x + int(fitted.font.getlength(fitted.lines[0])) + 6
        wy = y_bottom - was.line_height - max(2, fitted.size // 6)
        draw_fitted(draw, was, wx, wy, fill=BLACK)
        mid = wy + was.line_height // 2 + 1
        draw.line((wx, mid, wx + reserve - 6, mid), fill=RED, width=max(1, was.size // 10))


def _promo_band(draw: ImageDraw.ImageDraw, text: str, width: int, height: int) -> None:
    draw.rectangle((0, 0, width - 1, height - 1), fill=RED)
    fitted = fit_text(text, width - 8, height - 2, max_size=int(height * 0.75), min_size=8,
                      max_lines=1, bold=True)
    draw_fitted(draw, fitted, 4, (height - fitted.height) // 2, fill=WHITE, width=width - 8,
                align="center")


def render_label(content: LabelContent, size: str = "2.9",
                 image: Image.Image | None = None) -> Image.Image:
    """The label as a 3-colour "P" canvas (see module doc); ``pack`` it to send it."""
    width, height = SIZES[size]
    canvas = new_canvas(width, height)
    draw = ImageDraw.Draw(canvas)
    band = 0
    if content.promo:
        band = 22 if size == "2.9" else 40
        _promo_band(draw, content.promo, width, band)
    if size == "2.9":
        qr_box = height - band - 4
        qr_left = _paste_qr(canvas, content.digital_link, width - 2, band + 2, qr_box)
        text_w = qr_left - 8
        y = band + 3
        brand = fit_text(content.brand, text_w, 14, max_size=12, min_size=9, max_lines=1)
        y = draw_fitted(draw, brand, 4, y, fill=BLACK, width=text_w)
        name = fit_text(content.name, text_w, 44, max_size=18, min_size=10, max_lines=2,
                        bold=True)
        draw_fitted(draw, name, 4, y, fill=BLACK, width=text_w)
        _price_block(draw, content, 4, height - 2, text_w, 40 if band else 46)
        return canvas
    image_box = 130
    x_text = 8
    top = band + 8
    if image is not None:
        mask = _dithered(image, (image_box, image_box))
        canvas.paste(BLACK, (8 + (image_box - mask.width) // 2,
                             top + (image_box - mask.height) // 2), mask)
        x_text = 8 + image_box + 10
    text_w = width - x_text - 8
    y = top
    brand = fit_text(content.brand, text_w, 22, max_size=18, min_size=10, max_lines=1)
    y = draw_fitted(draw, brand, x_text, y, fill=BLACK, width=text_w) + 2
    name = fit_text(content.name, text_w, max(10, top + image_box - y), max_size=30,
                    min_size=12, max_lines=3, bold=True)
    draw_fitted(draw, name, x_text, y, fill=BLACK, width=text_w)
    qr_box = height - (top + image_box) - 12
    qr_left = _paste_qr(canvas, content.digital_link, width - 6, top + image_box + 6, qr_box)
    _price_block(draw, content, 8, height - 6, qr_left - 16, 84)
    return canvas


def render_and_pack(content: LabelContent, size: str = "2.9",
                    image: Image.Image | None = None) -> LabelBitmap:
    return pack(render_label(content, size, image))
