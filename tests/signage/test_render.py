"""signage.render: golden images per kind and orientation, and hostile text that must still fit."""

from __future__ import annotations

import time

import pytest
from PIL import Image, ImageChops

from contract.screen_items import parse_item
from signage.profiles import LANDSCAPE, PORTRAIT
from signage.render import render

from .fixtures import assets, spotlight
from .imagecompare import assert_matches_golden, mean_abs_diff

PROMO = {"kind": "promotion", "id": "promo-1", "title": "Soldes d'été",
         "body": "Jusqu'à -50 % sur les chaussures de randonnée, du 1er au 15 juillet.",
         "badge": "SOLDES", "image": "shoe"}
TEXT = {"kind": "text", "id": "text-1", "title": "Bienvenue chez Vitrine",
        "body": "Ouvert du lundi au samedi, de 9 h à 20 h. Retrait des commandes web à l'accueil."}


@pytest.mark.parametrize("profile", [LANDSCAPE, PORTRAIT], ids=lambda p: p.name)
def test_spotlight_golden(profile):
    im = render(spotlight(), profile, assets)
    assert im.size == profile.size and im.mode == "RGB"
    assert_matches_golden(im, f"spotlight_{profile.name}")


@pytest.mark.parametrize("profile", [LANDSCAPE, PORTRAIT], ids=lambda p: p.name)
@pytest.mark.parametrize("data", [PROMO, TEXT, {"kind": "image", "id": "img-1", "image": "shoe"}],
                         ids=lambda d: d["kind"])
def test_other_kinds_golden(profile, data):
    im = render(parse_item(data), profile, assets)
    assert im.size == profile.size
    assert_matches_golden(im, f"{data['kind']}_{profile.name}")


def test_golden_comparison_catches_a_moved_block():
    """The tolerance is not so loose that a layout change passes."""
    a = render(spotlight(), LANDSCAPE, assets)
    b = render(spotlight(name="Chaussure de trail"), LANDSCAPE, assets)
    assert mean_abs_diff(a, b) > 1.0


def test_render_is_deterministic():
    a = render(spotlight(), PORTRAIT, assets)
    b = render(spotlight(), PORTRAIT, assets)
    assert ImageChops.difference(a, b).getbbox() is None


def _text_rows(im: Image.Image, x0: int, x1: int) -> Image.Image:
    return im.crop((x0, 0, x1, im.height))


HOSTILE = {
    "very_long_name": {"name": "Chaussure de randonnée imperméable " * 30},
    "one_unbreakable_word": {"name": "X" * 600, "brand": "B" * 300},
    "empty_fields": {"name": "", "brand": "", "promo": None, "price_cents": None,
                     "was_price_cents": None, "stock": None, "online": False},
    "missing_image": {"image": "not-cached"},
    "emoji": {"name": "Baskets 👟🔥 édition 🌈" * 3, "promo": "🎉🎉🎉"},
    "right_to_left": {"name": "حذاء رياضي للجري خفيف الوزن", "brand": "שלום",
                      "promo": "خصم ٢٠٪"},
    "controls_and_newlines": {"name": "Ligne 1\nLigne 2\r\n\t\x1b[31mrouge\x00", "brand": "\u202e"},
    "huge_price": {"price_cents": 999_999_999, "was_price_cents": None},
}


@pytest.mark.parametrize("profile", [LANDSCAPE, PORTRAIT], ids=lambda p: p.name)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_text_renders_inside_the_text_column(profile, case):
    item = spotlight(**HOSTILE[case])
    t0 = time.perf_counter()
    im = render(item, profile, assets)
    elapsed = time.perf_counter() - t0
    assert im.size == profile.size
    assert elapsed < 1.0
    # nothing was drawn in the right margin of the text column (text overflowed the box)
    margin = im.crop((profile.width - 80, 0, profile.width, profile.height)) if not \
        profile.portrait else im.crop((profile.width - 70, int(profile.height * 0.45) + 1,
                                       profile.width, profile.height))
    assert margin.getcolors(1) is not None, f"{case}: text spilled into the margin"


def test_missing_image_draws_a_placeholder_not_a_hole():
    im = render(spotlight(image="not-cached"), LANDSCAPE, assets)
    panel = im.crop((60, 60, 900, 1000))
    colours = panel.getcolors(1_000_000)
    assert colours is not None and len(colours) > 2  # a colour field with initials on it
    with_image = render(spotlight(), LANDSCAPE, assets)
    assert mean_abs_diff(panel, with_image.crop((60, 60, 900, 1000))) > 10


def test_broken_asset_resolver_is_a_missing_image():
    def broken(_asset_id):
        raise OSError("truncated file")

    im = render(spotlight(), LANDSCAPE, broken)
    assert im.size == LANDSCAPE.size
