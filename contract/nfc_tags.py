"""What an NFC read is, and what it means to the device that made it. No nfcpy here.

:class:`TagRead` is what the kit's reader loop (``contract/nfc_reader.py``)
reports and what a device session publishes (``DeviceSession.tap``);
:func:`tag_says` reads a tag's NDEF with the kit's codec and classifier, so a
kiosk can react at once to a product tag. The edge decides again, and is the
one that verifies a loyalty token: a device only learns that there is one.
Kept apart from the reader so that whatever only handles reads (the kiosk's
flow, simulators) does not import nfcpy (~150 ms at start).
"""

from __future__ import annotations

from dataclasses import dataclass

from .gs1 import GS1Error
from .ndef_codec import NdefError, candidate_strings, decode_ndef
from .scan import classify

__all__ = ["TagMeaning", "TagRead", "tag_says"]


@dataclass(frozen=True)
class TagRead:
    """One tag presentation as read from the field."""

    uid: str
    """Tag identifier (NFCID / FeliCa IDm), lowercase hex."""
    ndef: bytes | None
    """Raw NDEF message octets as stored on the tag; ``b""`` for an empty NDEF
    area, ``None`` if the tag holds no (readable) NDEF data."""
    tag_type: str
    """nfcpy tag type, e.g. ``"Type2Tag"`` or ``"Type3Tag"``."""


@dataclass(frozen=True)
class TagMeaning:
    """What a tag's NDEF says to the device that read it (the edge decides again)."""

    token: str | None = None
    """A loyalty token (card or app), unverified: only the edge holds the key."""
    gtin: str | None = None
    """A product (GS1 Digital Link, element string or bare GTIN on the tag)."""


def tag_says(ndef: bytes | None) -> TagMeaning:
    """The first loyalty token and the first product on a tag; empty for anything else.

    Tags are attacker-controlled: malformed NDEF, broken GS1 and plain text all
    mean nothing here (the edge quarantines them with their reason when the
    read is published), never an exception on the reader thread.
    """
    if not ndef:
        return TagMeaning()
    try:
        strings = candidate_strings(decode_ndef(ndef))
    except NdefError:
        return TagMeaning()
    token = gtin = None
    for text in strings:
        try:
            content = classify(text)
        except GS1Error:
            continue
        token = token or content.token
        gtin = gtin or content.gtin
    return TagMeaning(token=token, gtin=gtin)
