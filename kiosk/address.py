"""The home delivery address form's rules, in plain Python (the screen only shows them).

A touch screen invites anything: pasted paragraphs, emoji, control characters,
a sleeve on the keyboard. So every field has a hard cap enforced while typing
(:func:`clip`: nothing ever overflows its box, whatever is typed or pasted) and
a rule checked on "Continue" (:func:`validate`), which returns the clean
address the order carries, or one error key per wrong field (translated on
screen, next to that field). The caps sit well inside ``order_place``'s schema,
so a validated address is always a valid request.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Field -> most characters it holds (the form's boxes are sized for these).
FIELDS: dict[str, int] = {"name": 40, "line1": 60, "line2": 40, "postcode": 5, "city": 40}
#: Fields that must be filled.
REQUIRED = ("name", "line1", "postcode", "city")
#: French postcodes: five digits, 01000-98999 (metropolitan and overseas départements).
_POSTCODE = re.compile(r"^(?:0[1-9]|[1-8]\d|9[0-8])\d{3}$")
#: A city is letters (any script's), spaces, hyphens, apostrophes and dots.
_CITY = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ '’.-])*$")


@dataclass(frozen=True)
class Checked:
    address: dict[str, str] | None
    """The clean address (empty optional fields dropped), or None if any field is wrong."""
    errors: dict[str, str]
    """Field -> i18n key of what is wrong with it."""


def clip(field: str, text: str) -> str:
    """What a field keeps of ``text`` while typing: printable, one line, at most its cap.

    Postcodes keep digits only (the form shows a number pad).
    """
    cap = FIELDS[field]
    kept = "".join(ch if unicodedata.category(ch)[0] not in "CZ" or ch == " " else " "
                   for ch in text)
    if field == "postcode":
        kept = "".join(ch for ch in kept if "0" <= ch <= "9")
    return kept[:cap]


def _clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def validate(fields: dict[str, str]) -> Checked:
    """Check the form; see :class:`Checked`."""
    clean = {f: _clean(clip(f, fields.get(f, ""))) for f in FIELDS}
    errors: dict[str, str] = {}
    for f in REQUIRED:
        if not clean[f]:
            errors[f] = "address_required"
    if clean["line1"] and (len(clean["line1"]) < 4 or not any(c.isalpha()
                                                            for c in clean["line1"])):
        errors["line1"] = "address_bad_street"
    if clean["postcode"] and not _POSTCODE.match(clean["postcode"]):
        errors["postcode"] = "address_bad_postcode"
    if clean["city"] and not _CITY.match(clean["city"]):
        errors["city"] = "address_bad_city"
    if clean["name"] and not any(c.isalpha() for c in clean["name"]):
        errors["name"] = "address_bad_name"
    if errors:
        return Checked(None, errors)
    return Checked({f: v for f, v in clean.items() if v}, {})


def one_line(address: dict[str, str]) -> str:
    """The address as the cart shows it: ``12 rue X, 69003 Lyon``."""
    street = ", ".join(v for v in (address.get("line1"), address.get("line2")) if v)
    return f"{street}, {address.get('postcode', '')} {address.get('city', '')}".strip()
