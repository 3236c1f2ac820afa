"""E-paper shelf-label bitmaps: the packed form the edge sends and the label checks.

Like real ESL systems (OpenEPaperLink: the access point renders, the tag only
wakes, fetches and displays), the edge renders each label and sends a
bitmap; the label never lays out text. A tri-colour panel (black, white, red)
takes two planes of 1 bit per pixel:

* ``black``: bit set = black ink; ``red``: bit set = red ink (red wins where
  both are set; the renderer never sets both);
* rows top to bottom, pixels left to right, most significant bit first, each
  row padded to a whole byte (296 and 400 are multiples of 8, so no padding
  in the sizes in :data:`SIZES`).

On the wire (``label_bitmap`` command) the two planes are concatenated,
zlib-compressed (a label is mostly white: 9,472 bytes become ~1-2 KB) and
base64-encoded, with the :func:`content_hash` of the uncompressed planes. The
label recomputes the hash after decompressing; a mismatch means a corrupt or
truncated transfer and the label keeps what it shows (and says so). The hash
is also what the label acknowledges: the edge knows, per label, which bitmap,
hence which price, is on the shelf.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import zlib
from dataclasses import dataclass

from PIL import Image

#: Panel sizes in pixels, by the usual diagonal name.
SIZES: dict[str, tuple[int, int]] = {"2.9": (296, 128), "4.2": (400, 300)}
#: Palette indices of the renderer's "P" images.
WHITE, BLACK, RED = 0, 1, 2
PALETTE_RGB = [(255, 255, 255), (0, 0, 0), (200, 0, 0)]
#: A decompressed bitmap larger than this is refused (zip bomb guard): 2 planes of 800x480.
MAX_PLANES_BYTES = 2 * 800 * 480 // 8
_BLACK_LUT = [255 if i == BLACK else 0 for i in range(256)]
_RED_LUT = [255 if i == RED else 0 for i in range(256)]


class LabelBitmapError(ValueError):
    """A bitmap that does not unpack: bad base64, bad zlib, wrong size or hash."""


@dataclass(frozen=True, slots=True)
class LabelBitmap:
    width: int
    height: int
    black: bytes
    red: bytes

    @property
    def hash(self) -> str:
        return content_hash(self.width, self.height, self.black, self.red)


def plane_bytes(width: int, height: int) -> int:
    return (width + 7) // 8 * height


def content_hash(width: int, height: int, black: bytes, red: bytes) -> str:
    """SHA-256 over a header and both planes, hex: what a label displays, in 64 characters."""
    digest = hashlib.sha256(b"vesl1" + struct.pack(">HH", width, height))
    digest.update(black)
    digest.update(red)
    return digest.hexdigest()


def new_canvas(width: int, height: int) -> Image.Image:
    """A white "P" canvas with the three ink colours as palette indices 0, 1, 2."""
    im = Image.new("P", (width, height), WHITE)
    im.putpalette([c for rgb in PALETTE_RGB for c in rgb])
    return im


def pack(image: Image.Image) -> LabelBitmap:
    """Split a 3-colour "P" canvas into its two 1-bit planes."""
    if image.mode != "P":
        raise ValueError("pack() takes the renderer's P-mode canvas")
    black = image.point(_BLACK_LUT, "1").tobytes()
    red = image.point(_RED_LUT, "1").tobytes()
    return LabelBitmap(image.width, image.height, black, red)


def to_image(bitmap: LabelBitmap) -> Image.Image:
    """What the panel shows, as RGB: for previews, screenshots and tests."""
    size = (bitmap.width, bitmap.height)
    black = Image.frombytes("1", size, bitmap.black)
    red = Image.frombytes("1", size, bitmap.red)
    im = Image.new("RGB", size, PALETTE_RGB[WHITE])
    im.paste(PALETTE_RGB[BLACK], (0, 0), black)
    im.paste(PALETTE_RGB[RED], (0, 0), red)
    return im


def encode_planes(bitmap: LabelBitmap) -> str:
    """Wire form of the planes: base64 of zlib of black + red."""
    return base64.b64encode(zlib.compress(bitmap.black + bitmap.red, 6)).decode("ascii")


def decode_planes(width: int, height: int, data: str, expected_hash: str) -> LabelBitmap:
    """Inverse of :func:`encode_planes`, checking size and hash (what a label does)."""
    n = plane_bytes(width, height)
    if not 0 < 2 * n <= MAX_PLANES_BYTES:
        raise LabelBitmapError(f"unsupported label size {width}x{height}")
    try:
        raw = base64.b64decode(data, validate=True)
        inflater = zlib.decompressobj()
        planes = inflater.decompress(raw, 2 * n + 1)
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise LabelBitmapError(f"planes not decodable: {exc}") from None
    if len(planes) != 2 * n or not inflater.eof:
        raise LabelBitmapError(f"planes are not {2 * n} bytes")
    bitmap = LabelBitmap(width, height, planes[:n], planes[n:])
    if bitmap.hash != expected_hash:
        raise LabelBitmapError("content hash does not match the planes")
    return bitmap
