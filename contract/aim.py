"""AIM symbology identifiers (ISO/IEC 15424) that scanners prepend to what they read.

A scanner configured to transmit them sends e.g. ``]Q3`` before the data of a GS1 QR code.
The prefix is the only reliable way to know that a raw string of digits is GS1 data (FNC1 in
first position) rather than arbitrary text, so the classifier looks at it before anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AimPrefix", "strip_aim"]

_WELL_FORMED = re.compile(r"\][A-Za-z][A-Za-z0-9]")


@dataclass(frozen=True)
class AimPrefix:
    """One decoded symbology identifier; ``gs1`` is True when the data is GS1 data."""

    code: str
    modifier: str
    name: str
    gs1: bool

    @property
    def identifier(self) -> str:
        """The prefix as transmitted, e.g. ``"]Q1"``."""
        return f"]{self.code}{self.modifier}"


# (code, modifier) -> (name, gs1). Code and modifier are case-sensitive: ]d is Data Matrix,
# ]D is something else entirely.
_KNOWN: dict[str, tuple[str, bool]] = {
    "A0": ("Code 39", False),
    "C0": ("Code 128", False),
    "C1": ("GS1-128", True),
    "C2": ("Code 128 (FNC1 in second position)", False),
    "E0": ("EAN-13/UPC-A", True),
    "E1": ("EAN/UPC 2-digit add-on", False),
    "E2": ("EAN/UPC 5-digit add-on", False),
    "E3": ("EAN-13 with add-on", False),
    "E4": ("EAN-8", True),
    "I0": ("Interleaved 2 of 5", False),
    "Q0": ("QR Code model 1", False),
    "Q1": ("QR Code", False),
    "Q2": ("QR Code (ECI)", False),
    "Q3": ("GS1 QR Code", True),
    "Q4": ("GS1 QR Code (ECI)", True),
    "Q5": ("QR Code (FNC1 in second position)", False),
    "Q6": ("QR Code (ECI, FNC1 in second position)", False),
    "d0": ("Data Matrix ECC 000-140", False),
    "d1": ("Data Matrix", False),
    "d2": ("GS1 DataMatrix", True),
    "d3": ("Data Matrix (FNC1 in second position)", False),
    "d4": ("Data Matrix (ECI)", False),
    "d5": ("GS1 DataMatrix (ECI)", True),
    "d6": ("Data Matrix (ECI, FNC1 in second position)", False),
    "e0": ("GS1 DataBar", True),
}


def strip_aim(text: str) -> tuple[AimPrefix | None, str]:
    """Split a leading AIM identifier off ``text``.

    Well-formed but unknown identifiers (``]`` + letter + letter/digit) are still stripped,
    with name ``"unknown"`` and ``gs1`` False, because leaving them in would corrupt the data
    that follows. Anything else is returned untouched with ``None``.
    """
    if _WELL_FORMED.match(text) is None:
        return None, text
    code, modifier = text[1], text[2]
    name, gs1 = _KNOWN.get(code + modifier, ("unknown", False))
    return AimPrefix(code=code, modifier=modifier, name=name, gs1=gs1), text[3:]
