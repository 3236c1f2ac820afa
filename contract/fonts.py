"""The typeface every Vitrine display draws with, shipped with the project.

Screens (``signage/``) and the edge's shelf-label renderer draw text with the
same font so that a price looks the same on a screen and on a label. DejaVu
Sans (regular and bold) is copied from Debian's ``fonts-dejavu-core`` with its
licence (``contract/fonts/LICENSE-DejaVu.txt``, Bitstream Vera licence, DejaVu
changes public domain) and declared as package data, so a screen never depends
on the fonts installed on its host. It covers Latin with every French accent,
Greek, Cyrillic, Hebrew and Arabic; emoji are not in it and draw as the
font's missing-glyph box (layout still fits them, nothing crashes).

Right-to-left text is shaped and reordered by Pillow's raqm layout (FriBiDi +
HarfBuzz) when it is available, which it is in Pillow's wheels; without raqm
Pillow falls back to its basic layout (left to right, no shaping).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from PIL import ImageFont, features

REGULAR = "DejaVuSans.ttf"
BOLD = "DejaVuSans-Bold.ttf"

#: raqm gives bidi reordering and shaping; the basic layout is the fallback.
LAYOUT = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC


def font_path(bold: bool = False) -> str:
    return str(resources.files("contract") / "fonts" / (BOLD if bold else REGULAR))


@lru_cache(maxsize=256)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """A cached font object: loading a face costs ~1 ms, a render uses a dozen."""
    return ImageFont.truetype(font_path(bold), max(1, int(size)), layout_engine=LAYOUT)
