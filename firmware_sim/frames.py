"""Synthetic camera frames showing a QR code or EAN barcode, for simulated scanners and tests.

Real shelf and kiosk cameras never see a perfect code: it sits on a grey
shelf, tilted, a little out of focus, under sensor noise. These frames reproduce
that well enough to exercise the decoder on *rendered pixels* instead of
trusting it on ideal input. Everything is done with Pillow primitives (no numpy
on the devices) and every random choice comes from ``seed``, so a failing frame
can be regenerated exactly.
"""

from __future__ import annotations

import random
from io import BytesIO
from typing import Literal

import segno
from PIL import Image, ImageChops, ImageFilter

from contract.gs1 import gtin_check_digit

FrameFormat = Literal["png", "jpeg"]

#: Quiet zone around the code, in modules. The QR spec asks for 4; decoders
#: need it to find the finder patterns against a busy background.
QUIET_ZONE = 4

#: Standard deviation of the mean of four uniform bytes (255 / sqrt(12) / 2).
_SUM4_SIGMA = 255 / (12**0.5) / 2


def qr_image(text: str, *, scale: int = 4) -> Image.Image:
    """Render ``text`` as a black-on-white QR code (grayscale, with quiet zone).

    ``micro=False`` matters: for short texts segno would otherwise pick a Micro
    QR symbol, which zbar (hence the edge) cannot decode. Non-ASCII text is
    encoded as UTF-8 with an ECI header, the combination zbar's character-set
    guesser gets right; plain segno would pick ISO 8859-1 without ECI, which zbar
    sometimes misreads as Shift-JIS.
    """
    if scale < 1:
        raise ValueError("scale must be >= 1")
    if text.isascii():
        qr = segno.make(text, error="m", micro=False)
    else:
        qr = segno.make(text, error="m", micro=False, encoding="utf-8", eci=True)
    rows = [bytes(255 if not dark else 0 for dark in row) for row in qr.matrix]
    width = len(rows[0])
    core = Image.frombytes("L", (width, len(rows)), b"".join(rows))
    tile = Image.new("L", (width + 2 * QUIET_ZONE, len(rows) + 2 * QUIET_ZONE), 255)
    tile.paste(core, (QUIET_ZONE, QUIET_ZONE))
    return tile.resize((tile.width * scale, tile.height * scale), Image.Resampling.NEAREST)


# EAN/UPC element patterns (1 = bar): L and G on the left half, R on the right.
_EAN_L = ("0001101", "0011001", "0010011", "0111101", "0100011",
          "0110001", "0101111", "0111011", "0110111", "0001011")
_EAN_R = tuple(p.translate(str.maketrans("01", "10")) for p in _EAN_L)
_EAN_G = tuple(p[::-1] for p in _EAN_R)
#: Left-half L/G parity that encodes the first digit of an EAN-13.
_EAN13_PARITY = ("LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG",
                 "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL")


def ean_check_digit(digits: str) -> str:
    """GS1 mod-10 check digit of ``digits``, as text (the one definition is in contract.gs1)."""
    return str(gtin_check_digit(digits))


def ean_image(digits: str, *, scale: int = 3, height: int | None = None) -> Image.Image:
    """Render an EAN-13 (12/13 digits) or EAN-8 (7/8 digits) barcode, as on a shelf label.

    segno only makes QR codes; shelf-edge labels and packs carry EAN-13, and the
    decoder's handling of those (AIM ``]E0``, UPC-A as 13 digits) deserves
    rendered pixels too. The check digit is added when missing, verified when given.
    """
    if not digits.isdigit() or len(digits) not in (7, 8, 12, 13):
        raise ValueError(f"not an EAN-8/EAN-13 number: {digits!r}")
    if len(digits) in (7, 12):
        digits += ean_check_digit(digits)
    elif ean_check_digit(digits[:-1]) != digits[-1]:
        raise ValueError(f"bad check digit in {digits!r}")
    if len(digits) == 13:
        parity = _EAN13_PARITY[int(digits[0])]
        left = "".join((_EAN_L if p == "L" else _EAN_G)[int(c)]
                       for p, c in zip(parity, digits[1:7], strict=True))
        right = digits[7:]
    else:
        left = "".join(_EAN_L[int(c)] for c in digits[:4])
        right = digits[4:]
    bits = "101" + left + "01010" + "".join(_EAN_R[int(c)] for c in right) + "101"
    bits = "0" * 11 + bits + "0" * 11  # quiet zones
    row = Image.frombytes("L", (len(bits), 1), bytes(0 if b == "1" else 255 for b in bits))
    return row.resize((len(bits) * scale, height or 25 * scale), Image.Resampling.NEAREST)


def qr_frame(
    text: str,
    *,
    scale: int = 4,
    rotate_deg: float = 0,
    noise: float = 0.0,
    blur: float = 0.0,
    size: tuple[int, int] | None = None,
    background: int = 200,
    seed: int | None = None,
) -> Image.Image:
    """A grayscale camera frame with a QR code for ``text`` on a grey shelf.

    ``scale`` is pixels per module; the other arguments are those of
    :func:`shelf_frame`.
    """
    return shelf_frame(qr_image(text, scale=scale), rotate_deg=rotate_deg, noise=noise,
                       blur=blur, size=size, background=background, seed=seed)


def shelf_frame(
    tile: Image.Image,
    *,
    rotate_deg: float = 0,
    noise: float = 0.0,
    blur: float = 0.0,
    size: tuple[int, int] | None = None,
    background: int = 200,
    seed: int | None = None,
) -> Image.Image:
    """Put a rendered code (``tile``) in front of a camera looking at a grey shelf.

    ``rotate_deg`` turns the code counter-clockwise; ``blur`` is a Gaussian blur
    radius in pixels (focus); ``noise`` (0..1) is sensor noise: Gaussian with a
    standard deviation of ``noise * 255`` plus salt-and-pepper on ``noise / 10``
    of the pixels. ``size`` is the frame size (default: the code with a margin
    of half its width all round); the code is centred and must fit.
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError("noise must be within 0..1")
    if not 0 <= background <= 255:
        raise ValueError("background must be a grey level 0..255")
    tile = tile.convert("L")
    if rotate_deg % 360:
        tile = tile.rotate(rotate_deg, resample=Image.Resampling.BICUBIC, expand=True,
                           fillcolor=background)
    if size is None:
        size = (tile.width * 2, tile.height * 2)
    if tile.width > size[0] or tile.height > size[1]:
        raise ValueError(f"a {tile.width}x{tile.height} code does not fit a {size} frame")
    frame = Image.new("L", size, background)
    frame.paste(tile, ((size[0] - tile.width) // 2, (size[1] - tile.height) // 2))
    if blur > 0:
        frame = frame.filter(ImageFilter.GaussianBlur(blur))
    if noise > 0:
        frame = add_noise(frame, noise, random.Random(seed))
    return frame


def add_noise(img: Image.Image, amount: float, rng: random.Random) -> Image.Image:
    """Gaussian plus salt-and-pepper noise on an "L" image, reproducible from ``rng``.

    Per-pixel ``rng.gauss`` would take ~0.2 s for a VGA frame; instead the
    Gaussian is approximated by the mean of four uniform byte planes (Irwin-Hall),
    which is all C-level Pillow work and keeps frame generation in milliseconds.
    """
    n = img.width * img.height

    def plane() -> Image.Image:
        return Image.frombytes("L", img.size, rng.randbytes(n))

    mean4 = ImageChops.add(ImageChops.add(plane(), plane(), scale=2.0),
                           ImageChops.add(plane(), plane(), scale=2.0), scale=2.0)
    gain = amount * 255 / _SUM4_SIGMA
    centred = mean4.point([max(0, min(255, round(128 + gain * (v - 127.5)))) for v in range(256)])
    out = ImageChops.add(img, centred, offset=-128)
    # Salt and pepper: dead (black) and hot (white) pixels, amount/10 of them in total.
    cut = round(amount / 10 * 256 / 2)
    if cut:
        picks = plane()
        out.paste(0, mask=picks.point([255 if v < cut else 0 for v in range(256)]))
        out.paste(255, mask=picks.point([255 if v >= 256 - cut else 0 for v in range(256)]))
    return out


def encode_frame(img: Image.Image, fmt: FrameFormat = "png", *, quality: int = 85) -> bytes:
    """Encode a frame the way a camera would ship it: PNG (lossless) or JPEG."""
    buf = BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG")
    elif fmt == "jpeg":
        if img.mode not in ("L", "RGB"):
            img = img.convert("RGB")
        img.save(buf, format="JPEG", quality=quality)
    else:
        raise ValueError(f"unsupported frame format {fmt!r}")
    return buf.getvalue()
