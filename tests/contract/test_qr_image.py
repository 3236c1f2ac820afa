"""decode_image on real rendered frames, and on hostile bytes."""

from __future__ import annotations

import contextlib
import string
import struct
import zlib
from functools import cache
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from contract.qr_image import (
    MAX_FRAME_PIXELS,
    MAX_TEXT_CHARS,
    Decoded,
    FrameError,
    decode_image,
    decode_pil,
)
from contract.validation import validate
from firmware_sim.frames import FrameFormat, ean_image, encode_frame, qr_frame, shelf_frame

DIGITAL_LINK = "https://id.gs1.org/01/09506000134352"
LOYALTY = "vt1.eyJzdWIiOiJjdXN0LTQyIiwiZXhwIjoxNzMyMzcwMDAwfQ.h3Jx-9_0dGFnQUJDRGVmZ2hpams"
TEXTS = [
    DIGITAL_LINK,
    LOYALTY,
    "12345",  # short numeric: segno would pick a Micro QR, which zbar cannot read
    "https://id.gs1.org/01/09506000134352/10/AB-123?17=261231&linkType=gs1:pip",
]

#: Camera conditions; all decode with margin (checked over 12 seeds when chosen).
CONDITIONS: dict[str, dict[str, object]] = {
    "plain": {},
    "rot15": {"rotate_deg": 15},
    "rot90": {"rotate_deg": 90},
    "rot45-small": {"rotate_deg": 45, "scale": 3},
    "tiny-modules": {"scale": 2},
    "big-modules": {"scale": 8},
    "noisy": {"noise": 0.1, "seed": 1},
    "vga-tilted-blurred-noisy": {"size": (640, 480), "rotate_deg": 15, "blur": 0.6,
                                 "noise": 0.05, "seed": 2},
}


@cache
def frame_bytes(text: str, condition: str, fmt: FrameFormat) -> bytes:
    return encode_frame(qr_frame(text, **CONDITIONS[condition]), fmt)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
@pytest.mark.parametrize("condition", list(CONDITIONS))
@pytest.mark.parametrize("text", TEXTS, ids=["digital-link", "loyalty", "numeric", "dl-long"])
def test_round_trip_rendered_frames(text: str, condition: str, fmt: FrameFormat) -> None:
    assert decode_image(frame_bytes(text, condition, fmt), fmt=fmt) == [
        Decoded(text, "QRCODE", "]Q1")]


def test_prefixed_text_is_what_a_scanner_transmits() -> None:
    (code,) = decode_image(frame_bytes(DIGITAL_LINK, "plain", "png"))
    assert code.prefixed == "]Q1" + DIGITAL_LINK


@pytest.mark.parametrize("text", ["café crème", "Ünïcödé ✓", "日本語のテキスト"])
def test_non_ascii_round_trip(text: str) -> None:
    assert [d.text for d in decode_pil(qr_frame(text))] == [text]


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=string.printable, min_size=1, max_size=80))
def test_round_trip_printable_text(text: str) -> None:
    data = encode_frame(qr_frame(text, scale=2), "png")
    assert decode_image(data) == [Decoded(text, "QRCODE", "]Q1")]


# -- retail barcodes --------------------------------------------------------------------------


@pytest.mark.parametrize(("digits", "expected"), [
    ("9506000134352", Decoded("9506000134352", "EAN13", "]E0")),
    # UPC-A is an EAN-13 with a leading 0; sent as 13 digits, like zbar's default and AIM ]E0.
    ("0012345678905", Decoded("0012345678905", "UPCA", "]E0")),
    ("96385074", Decoded("96385074", "EAN8", "]E4")),
])
def test_ean_family(digits: str, expected: Decoded) -> None:
    frame = shelf_frame(ean_image(digits), rotate_deg=8, noise=0.05, seed=4)
    assert decode_image(encode_frame(frame, "jpeg")) == [expected]


def test_several_codes_top_first_and_duplicates_once() -> None:
    qr = qr_frame(LOYALTY, scale=3, background=255)
    ean = ean_image("9506000134352")
    frame = Image.new("L", (500, 700), 200)
    frame.paste(ean, (20, 20))
    frame.paste(qr, (20, 200))
    frame.paste(qr, (20, 200 + qr.height))  # the same code twice: one scan
    assert [(d.symbology, d.text) for d in decode_pil(frame)] == [
        ("EAN13", "9506000134352"), ("QRCODE", LOYALTY)]


# -- frames without a usable code ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_frame_without_code_is_empty(fmt: FrameFormat) -> None:
    shelf = shelf_frame(Image.new("L", (320, 240), 230), size=(640, 480), noise=0.1, seed=5)
    assert decode_image(encode_frame(shelf, fmt)) == []


def test_empty_qr_is_not_a_scan() -> None:
    assert decode_pil(qr_frame("")) == []


def test_text_longer_than_the_contract_is_dropped() -> None:
    (longest,) = decode_pil(qr_frame("7" * MAX_TEXT_CHARS, scale=2))
    assert longest.text == "7" * MAX_TEXT_CHARS
    validate("qr", {"msg_id": "m1", "ts": 0, "text": longest.prefixed, "symbology": "QRCODE"})
    assert decode_pil(qr_frame("7" * (MAX_TEXT_CHARS + 1), scale=2)) == []


# -- pixel formats ----------------------------------------------------------------------------


def _png(img: Image.Image) -> bytes:
    buf = BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_rgb_and_palette_frames() -> None:
    frame = qr_frame(LOYALTY, rotate_deg=15)
    for mode in ("RGB", "P", "1"):
        assert [d.text for d in decode_image(_png(frame.convert(mode)))] == [LOYALTY], mode


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    dim = qr_frame(LOYALTY).point(lambda v: 40 + v * 0.7)  # dark modules at grey 40, not 0
    wide = Image.frombytes("I;16B", dim.size, bytes(b for v in dim.tobytes() for b in (v, v)))
    assert wide.convert("L").getextrema() == (255, 255)  # why plain convert("L") is wrong
    assert [d.text for d in decode_image(_png(wide))] == [LOYALTY]


def test_transparent_background_is_flattened_on_white() -> None:
    code = qr_frame(LOYALTY)
    screenshot = Image.new("RGBA", code.size, (0, 0, 0, 0))  # black, but fully transparent
    screenshot.putalpha(code.point(lambda v: 255 - v))  # opaque black modules
    assert [d.text for d in decode_image(_png(screenshot))] == [LOYALTY]


# -- hostile input ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_garbage_raises_only_frame_error(data: bytes) -> None:
    with contextlib.suppress(FrameError):
        assert decode_image(data) == []


_VALID = {fmt: encode_frame(qr_frame("vt1.a.b", scale=2), fmt) for fmt in ("png", "jpeg")}


@settings(max_examples=150, deadline=None)
@given(
    fmt=st.sampled_from(["png", "jpeg"]),
    cut=st.integers(min_value=0, max_value=4000),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
)
def test_damaged_frames_raise_only_frame_error(fmt: str, cut: int, flips: list) -> None:
    data = bytearray(_VALID[fmt])
    for pos, value in flips:
        data[pos % len(data)] = value
    with contextlib.suppress(FrameError):
        decode_image(bytes(data[: len(data) - cut % len(data)]))


@pytest.mark.parametrize("fmt", ["gif", "bmp", "tiff", "eps"])
def test_other_image_formats_are_refused(fmt: str) -> None:
    if fmt == "eps":  # never handed to Ghostscript
        data = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    else:
        buf = BytesIO()
        qr_frame("vt1.a.b").save(buf, format=fmt)
        data = buf.getvalue()
    with pytest.raises(FrameError, match="not a PNG or JPEG"):
        decode_image(data)


def test_lazy_pil_image_with_corrupt_data() -> None:
    data = frame_bytes(LOYALTY, "plain", "png")
    lazy = Image.open(BytesIO(data[: len(data) // 2]))
    with lazy, pytest.raises(FrameError, match="corrupt"):
        decode_pil(lazy)


def test_declared_format_must_match() -> None:
    with pytest.raises(FrameError):
        decode_image(frame_bytes(LOYALTY, "plain", "png"), fmt="jpeg")
    with pytest.raises(FrameError, match="unsupported"):
        decode_image(frame_bytes(LOYALTY, "plain", "png"), fmt="gif")


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` greyscale pixels but holds almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [(4097, 4096), (5000, 5000), (100_000, 100_000), (2**31 - 1, 1)])
def test_oversize_frames_rejected_before_decompression(size, monkeypatch) -> None:
    def no_load(self):
        raise AssertionError("pixels decompressed before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_load)
    with pytest.raises(FrameError, match="exceeds"):
        decode_image(_png_header(*size))


def test_frame_at_the_limit_is_not_refused_for_size() -> None:
    assert MAX_FRAME_PIXELS == 4096 * 4096
    with pytest.raises(FrameError, match="corrupt"):  # truncated data, but not "exceeds"
        decode_image(_png_header(4096, 4096))


def test_big_cheap_real_image_rejected() -> None:
    bomb = _png(Image.new("1", (4200, 4200), 1))
    assert len(bomb) < 100_000
    with pytest.raises(FrameError, match="exceeds"):
        decode_image(bomb)
    with pytest.raises(FrameError, match="exceeds"):
        decode_pil(Image.new("L", (4200, 4200)))
