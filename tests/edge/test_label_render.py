"""edge.label_render: what a shelf label shows, read back the way a shopper and a scanner would."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw
from pyzbar.pyzbar import decode

from contract.eslabel import PALETTE_RGB, RED, SIZES, decode_planes, encode_planes, to_image
from edge.label_render import LabelContent, render_and_pack, render_label

GTIN = "04063511002891"
PLAIN = LabelContent(GTIN, "Trail Runner 2", "Kestrel", 11999, "EUR")
PROMO = LabelContent(GTIN, "Trail Runner 2", "Kestrel", 9999, "EUR", promo="-20 % cette semaine",
                     was_price_cents=11999)


def _image():
    im = Image.new("RGB", (400, 400), (230, 230, 230))
    ImageDraw.Draw(im).ellipse((50, 50, 350, 350), fill=(30, 30, 30))
    return im


def _red_pixels(im: Image.Image) -> int:
    return dict((c, n) for n, c in im.getcolors()).get(PALETTE_RGB[RED], 0)


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("content", [PLAIN, PROMO], ids=["plain", "promo"])
def test_label_has_three_inks_and_a_readable_digital_link(size, content):
    canvas = render_label(content, size, _image())
    assert canvas.size == SIZES[size] and canvas.mode == "P"
    assert {i for _n, i in canvas.getcolors()} <= {0, 1, 2}
    rgb = to_image(render_and_pack(content, size, _image()))
    big = rgb.resize((rgb.width * 2, rgb.height * 2), Image.Resampling.NEAREST)
    found = [d.data.decode() for d in decode(big.convert("L"))]
    assert found == [f"https://id.gs1.org/01/{GTIN}"]


@pytest.mark.parametrize("size", sorted(SIZES))
def test_promotion_is_printed_in_red_and_plain_price_is_not(size):
    assert _red_pixels(to_image(render_and_pack(PLAIN, size))) == 0
    assert _red_pixels(to_image(render_and_pack(PROMO, size))) > 500


def test_same_content_same_hash_and_price_change_changes_it():
    a = render_and_pack(PLAIN)
    assert render_and_pack(PLAIN).hash == a.hash
    cheaper = LabelContent(GTIN, "Trail Runner 2", "Kestrel", 11899, "EUR")
    assert render_and_pack(cheaper).hash != a.hash


def test_packed_label_survives_the_wire():
    bitmap = render_and_pack(PROMO, "4.2", _image())
    assert decode_planes(400, 300, encode_planes(bitmap), bitmap.hash) == bitmap


@pytest.mark.parametrize("name", ["", "X" * 500, "Baskets 👟 " * 40, "حذاء رياضي للجري"])
@pytest.mark.parametrize("size", sorted(SIZES))
def test_hostile_names_never_cover_the_qr_code(size, name):
    content = LabelContent(GTIN, name, name, 11999, "EUR", promo=name or None)
    rgb = to_image(render_and_pack(content, size, _image()))
    big = rgb.resize((rgb.width * 2, rgb.height * 2), Image.Resampling.NEAREST)
    assert [d.data.decode() for d in decode(big.convert("L"))] == \
        [f"https://id.gs1.org/01/{GTIN}"]


def test_dithered_image_has_grey_levels_as_dot_density():
    canvas = render_label(PLAIN, "4.2", Image.new("RGB", (100, 100), (128, 128, 128)))
    patch = canvas.crop((40, 40, 100, 100))
    black = patch.histogram()[1]
    assert 0.3 < black / (60 * 60) < 0.7
