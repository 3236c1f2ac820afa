"""Fit a text into a box: wrap at word boundaries, shrink, and end with an ellipsis.

Product names come from a catalogue nobody proofreads for screens: a name can
be empty, 300 characters long, one unbreakable word, emoji or Arabic. Every
display in the store (screens in ``signage/``, shelf labels rendered at the
edge) lays text out through :func:`fit_text`, which always returns something
that fits its box, whatever the text:

1. from ``max_size`` down to ``min_size`` (binary search on the size), the
   largest size at which the words, wrapped greedily, fit in ``max_lines``
   lines within the box's width and height; a word wider than the box is cut
   between characters (a GTIN or a URL has no spaces);
2. if nothing fits even at ``min_size``, the text is wrapped at ``min_size``
   and cut after the last line that fits, which ends with "…".

Whitespace (newlines, tabs, runs of spaces) is collapsed: a name is one
paragraph. Control characters are dropped, so a hostile name cannot move the
cursor of a terminal or break a line the layout did not choose.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from contract.fonts import font

ELLIPSIS = "…"
#: Longer texts are cut before layout: no display shows more, and layout cost
#: must not grow with whatever a feed sends.
MAX_CHARS = 1000
#: Line height as a multiple of the font size.
LINE_SPACING = 1.18


@dataclass(frozen=True, slots=True)
class FittedText:
    """Lines to draw, at ``size``; ``truncated`` when an ellipsis replaced the end."""

    lines: tuple[str, ...]
    size: int
    bold: bool
    truncated: bool

    @property
    def line_height(self) -> int:
        return round(self.size * LINE_SPACING)

    @property
    def height(self) -> int:
        return self.line_height * len(self.lines)

    @property
    def font(self) -> ImageFont.FreeTypeFont:
        return font(self.size, self.bold)


@lru_cache(maxsize=8192)
def drawable(ch: str) -> bool:
    """Whether the shipped font has a glyph for ``ch`` (checked once per character).

    A character without one would draw as the missing-glyph box ("tofu"), which
    on a public screen looks broken; emoji are the usual case. FreeType maps
    such characters to glyph 0, so its bitmap equals the one of a private-use
    code point, which no font here defines.
    """
    return _glyph_bitmap(ch) != _glyph_bitmap(_NOT_A_GLYPH)


_NOT_A_GLYPH = "\U000f0000"  # plane 15 private use: no font here defines it


@lru_cache(maxsize=8192)
def _glyph_bitmap(ch: str) -> bytes:
    im = Image.new("L", (48, 48))
    ImageDraw.Draw(im).text((8, 4), ch, font=font(24), fill=255)
    return im.tobytes()


def clean(text: str | None) -> str:
    """One paragraph of drawable text: controls and glyph-less characters dropped,
    whitespace collapsed."""
    if not text:
        return ""
    kept = "".join(" " if ch.isspace() else ch for ch in text[:4 * MAX_CHARS]
                   if ch.isspace()
                   or (unicodedata.category(ch)[0] != "C" and (ch.isascii() or drawable(ch))))
    return " ".join(kept.split())[:MAX_CHARS]


def rtl(text: str) -> bool:
    """Right-to-left paragraph: its first strong character is Arabic or Hebrew (bidi rule P2)."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def _split_long(word: str, f: ImageFont.FreeTypeFont, width: int,
                limit: int | None) -> list[str]:
    """Cut a word wider than the box into pieces that fit, between characters.

    Each piece is the longest prefix that fits, found by binary search, so a
    500-character "word" costs ~10 measurements per line, not 500.
    """
    pieces: list[str] = []
    rest = word
    while rest and (limit is None or len(pieces) <= limit):
        lo, hi = 1, len(rest)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if f.getlength(rest[:mid]) <= width:
                lo = mid
            else:
                hi = mid - 1
        pieces.append(rest[:lo])
        rest = rest[lo:]
    if rest:
        pieces.append(rest)
    return pieces


def wrap(text: str, f: ImageFont.FreeTypeFont, width: int,
         limit: int | None = None) -> list[str]:
    """Greedy word wrap of an already cleaned text at font ``f``.

    With ``limit``, stops once more than ``limit`` lines are known: the caller
    only needs to know that it does not fit, and a 300-word name then costs
    a few measurements instead of hundreds.
    """
    lines: list[str] = []
    cur = ""
    for word in text.split(" "):
        if limit is not None and len(lines) > limit:
            return lines
        if not word:
            continue
        candidate = f"{cur} {word}" if cur else word
        if f.getlength(candidate) <= width:
            cur = candidate
            continue
        if cur:
            lines.append(cur)
            cur = ""
        if f.getlength(word) <= width:
            cur = word
        else:
            *full, cur = _split_long(word, f, width, limit)
            lines.extend(full)
    if cur:
        lines.append(cur)
    return lines


def _ellipsize(line: str, f: ImageFont.FreeTypeFont, width: int) -> str:
    while line and f.getlength(line.rstrip() + ELLIPSIS) > width:
        line = line[:-1]
    return line.rstrip() + ELLIPSIS


def fit_text(text: str | None, width: int, height: int, *, max_size: int,
             min_size: int = 10, max_lines: int = 3, bold: bool = False) -> FittedText:
    """Largest layout of ``text`` that fits ``width`` x ``height`` (see module doc)."""
    text = clean(text)
    width, height = max(1, width), max(1, height)
    min_size = max(1, min(min_size, max_size))
    if not text:
        return FittedText((), max_size, bold, False)

    def lines_at(size: int) -> list[str] | None:
        lines = wrap(text, font(size, bold), width, max_lines)
        fits = (len(lines) <= max_lines
                and round(size * LINE_SPACING) * len(lines) <= height)
        return lines if fits else None

    lo, hi, best = min_size, max_size, None
    while lo <= hi:
        mid = (lo + hi) // 2
        lines = lines_at(mid)
        if lines is not None:
            best, lo = (mid, lines), mid + 1
        else:
            hi = mid - 1
    if best is not None:
        return FittedText(tuple(best[1]), best[0], bold, False)
    f = font(min_size, bold)
    room = max(1, min(max_lines, height // round(min_size * LINE_SPACING)))
    lines = wrap(text, f, width, room)[:room]
    lines[-1] = _ellipsize(lines[-1], f, width)
    return FittedText(tuple(lines), min_size, bold, True)


def draw_fitted(draw: ImageDraw.ImageDraw, fitted: FittedText, x: int, y: int, *,
                fill: object, width: int | None = None, align: str = "left") -> int:
    """Draw the lines from the top-left ``(x, y)``; returns the y below the last line.

    ``align="left"`` means "start": a right-to-left line is aligned right when
    the box ``width`` is known.
    """
    f = fitted.font
    for line in fitted.lines:
        dx = 0
        line_align = "right" if align == "left" and rtl(line) else align
        if width is not None and line_align != "left":
            spare = width - f.getlength(line)
            dx = int(spare / 2) if line_align == "center" else int(spare)
        draw.text((x + dx, y), line, font=f, fill=fill)
        y += fitted.line_height
    return y
