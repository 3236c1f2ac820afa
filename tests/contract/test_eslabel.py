"""contract.eslabel: planes pack, travel and unpack bit for bit, and the hash catches damage."""

from __future__ import annotations

import base64
import contextlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.eslabel import (
    BLACK,
    RED,
    SIZES,
    LabelBitmap,
    LabelBitmapError,
    decode_planes,
    encode_planes,
    new_canvas,
    pack,
    plane_bytes,
    to_image,
)


def _canvas():
    im = new_canvas(*SIZES["2.9"])
    im.putpixel((0, 0), BLACK)  # first bit of the first byte
    im.putpixel((295, 127), RED)  # last bit of the last byte
    im.putpixel((8, 1), RED)
    return im


def test_planes_are_msb_first_one_bit_per_pixel_ink_set():
    bitmap = pack(_canvas())
    n = plane_bytes(296, 128)
    assert len(bitmap.black) == len(bitmap.red) == n == 37 * 128
    assert bitmap.black[0] == 0x80 and sum(bitmap.black) == 0x80
    assert bitmap.red[-1] == 0x01
    assert bitmap.red[37 + 1] == 0x80  # (8, 1): row 1, byte 1, MSB


def test_round_trip_through_the_wire_form_and_image():
    bitmap = pack(_canvas())
    back = decode_planes(296, 128, encode_planes(bitmap), bitmap.hash)
    assert back == bitmap
    rgb = to_image(back)
    assert rgb.getpixel((0, 0)) == (0, 0, 0) and rgb.getpixel((295, 127)) == (200, 0, 0)
    assert rgb.getpixel((1, 0)) == (255, 255, 255)


def test_hash_depends_on_every_bit_and_on_the_size():
    a = pack(_canvas())
    flipped = LabelBitmap(a.width, a.height, a.black, a.red[:-1] + b"\x00")
    assert a.hash != flipped.hash
    other_size = LabelBitmap(37 * 8, 128, a.black, a.red)
    assert other_size.hash == a.hash  # same geometry
    assert LabelBitmap(a.width * 2, a.height // 2, a.black, a.red).hash != a.hash


@pytest.mark.parametrize("data, message", [
    ("not base64!!", "not decodable"),
    (base64.b64encode(b"not zlib").decode(), "not decodable"),
    (base64.b64encode(zlib.compress(b"\x00" * 10)).decode(), "bytes"),
    (base64.b64encode(zlib.compress(b"\x00" * 20_000)).decode(), "bytes"),
])
def test_damaged_planes_are_refused(data, message):
    with pytest.raises(LabelBitmapError, match=message):
        decode_planes(296, 128, data, "0" * 64)


def test_wrong_hash_is_refused():
    bitmap = pack(_canvas())
    with pytest.raises(LabelBitmapError, match="hash"):
        decode_planes(296, 128, encode_planes(bitmap), "f" * 64)


def test_zip_bomb_is_refused_without_inflating_it():
    bomb = base64.b64encode(zlib.compress(b"\x00" * 50_000_000)).decode()
    with pytest.raises(LabelBitmapError):
        decode_planes(296, 128, bomb, "0" * 64)
    with pytest.raises(LabelBitmapError, match="size"):
        decode_planes(10_000, 10_000, bomb, "0" * 64)


@settings(max_examples=200, deadline=None)
@given(width=st.integers(-5, 900), height=st.integers(-5, 500), data=st.text(max_size=300),
       expected=st.text(max_size=70))
def test_decode_never_raises_anything_but_label_bitmap_error(width, height, data, expected):
    with contextlib.suppress(LabelBitmapError):
        decode_planes(width, height, data, expected)
