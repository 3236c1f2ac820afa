"""contract.textfit: whatever the text, the layout fits its box."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contract.textfit import ELLIPSIS, clean, fit_text, rtl

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)


@settings(max_examples=150, deadline=None)
@given(text=_text, width=st.integers(1, 900), height=st.integers(1, 400),
       max_size=st.integers(8, 120), max_lines=st.integers(1, 4), bold=st.booleans())
def test_any_text_fits_its_box(text, width, height, max_size, max_lines, bold):
    fitted = fit_text(text, width, height, max_size=max_size, min_size=8,
                      max_lines=max_lines, bold=bold)
    assert len(fitted.lines) <= max_lines
    for line in fitted.lines:
        # a single character wider than a 1-pixel box is the only allowed overflow
        assert fitted.font.getlength(line) <= width or len(line.rstrip(ELLIPSIS)) <= 1
        assert "\n" not in line and "\x00" not in line
    if fitted.lines and not fitted.truncated:
        assert fitted.height <= height
        assert "".join(fitted.lines).replace(" ", "") == clean(text).replace(" ", "")


def test_short_text_is_drawn_at_the_largest_size():
    fitted = fit_text("Prix", 1000, 200, max_size=80, min_size=10)
    assert fitted.size == 80 and fitted.lines == ("Prix",) and not fitted.truncated


def test_long_text_shrinks_then_wraps_then_ends_with_an_ellipsis():
    name = "Chaussure de randonnée imperméable à tige haute, semelle Vibram " * 4
    fitted = fit_text(name, 600, 200, max_size=80, min_size=30, max_lines=2)
    assert fitted.truncated and fitted.size == 30 and len(fitted.lines) == 2
    assert fitted.lines[-1].endswith(ELLIPSIS)


def test_word_wider_than_the_box_is_cut_between_characters():
    fitted = fit_text("0" * 200, 300, 400, max_size=40, min_size=20, max_lines=10)
    assert len(fitted.lines) > 1 and not fitted.truncated
    assert "".join(fitted.lines) == "0" * 200


def test_french_accents_are_kept_and_emoji_without_glyph_dropped():
    assert clean("Été à Noël — ÇA 👟 coûte\n€") == "Été à Noël — ÇA coûte €"


def test_controls_and_whitespace_are_collapsed():
    assert clean("a\tb\r\n\x1b[31mc\x00 \u202e d") == "a b [31mc d"
    assert clean(None) == "" and clean("   ") == ""


def test_direction_of_a_paragraph_is_its_first_strong_character():
    assert rtl("حذاء رياضي") and rtl("123 שלום")
    assert not rtl("Trail حذاء") and not rtl("123")
