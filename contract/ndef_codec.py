"""NDEF messages read from NFC tags: decode what matters to Vitrine, encode for simulators.

Shelf readers forward the raw NDEF bytes of every tapped tag (product tags, loyalty cards,
a customer's phone). Those bytes are attacker-controlled, and ndeflib raises a variety of
exceptions on garbage, so :func:`decode_ndef` funnels every failure into :class:`NdefError`
and limits ndeflib to the three record types we use (URI, Text, Smart Poster): every other
record is kept opaque, which keeps ndeflib's more exotic decoders (handover, Wi-Fi,
Bluetooth) off the attack surface entirely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import ndef

__all__ = [
    "MAX_NDEF_BYTES",
    "NdefError",
    "NdefItem",
    "candidate_strings",
    "decode_ndef",
    "encode_smartposter",
    "encode_text",
    "encode_uri",
]

#: Largest NDEF message accepted (the nfc schema caps the base64 field at 8 KiB too). The
#: biggest NTAG holds under 1 KiB; anything larger is not a tag we care about.
MAX_NDEF_BYTES = 8192

_URI_TYPE = "urn:nfc:wkt:U"
_TEXT_TYPE = "urn:nfc:wkt:T"
_SMARTPOSTER_TYPE = "urn:nfc:wkt:Sp"
_DECODED_TYPES: dict[str, type[ndef.Record]] = {
    _URI_TYPE: ndef.UriRecord,
    _TEXT_TYPE: ndef.TextRecord,
    _SMARTPOSTER_TYPE: ndef.SmartposterRecord,
}

# What ndeflib raises on malformed input with the record types above: its own DecodeError,
# and ValueError (including UnicodeDecodeError) from type-name and language conversions.
_NDEFLIB_ERRORS = (ndef.DecodeError, ndef.EncodeError, ValueError)


class NdefError(ValueError):
    """Bytes that are not a usable NDEF message, or a value that cannot be encoded."""


@dataclass(frozen=True)
class NdefItem:
    """One record of a tag, reduced to what the classifier and the kiosk need.

    ``value`` is the URI (also for a Smart Poster), the text, or for other records the record
    type, so staff tooling can still say what was on the tag.
    """

    kind: Literal["uri", "text", "smartposter", "other"]
    value: str
    title: str | None = None
    language: str | None = None
    record_type: str = ""


def decode_ndef(raw: bytes) -> list[NdefItem]:
    """Decode an NDEF message strictly; raise :class:`NdefError` on anything malformed.

    Empty records (TNF 0, what a blank formatted tag holds) carry nothing and are skipped; a
    message with nothing else is an error, like an empty byte string.
    """
    if not raw:
        raise NdefError("empty NDEF message")
    if len(raw) > MAX_NDEF_BYTES:
        raise NdefError(f"NDEF message too large: {len(raw)} bytes > {MAX_NDEF_BYTES}")
    try:
        records = list(ndef.message_decoder(bytes(raw), errors="strict",
                                            known_types=_DECODED_TYPES))
    except _NDEFLIB_ERRORS as exc:
        raise NdefError(f"malformed NDEF: {exc}") from None
    items = [_item(record) for record in records if record.type != ""]
    if not items:
        raise NdefError("empty NDEF message")
    return items


def _item(record: ndef.Record) -> NdefItem:
    if isinstance(record, ndef.UriRecord):
        return NdefItem("uri", record.iri, record_type=record.type)
    if isinstance(record, ndef.TextRecord):
        return NdefItem("text", record.text, language=record.language, record_type=record.type)
    if isinstance(record, ndef.SmartposterRecord):
        # Strict decoding guarantees exactly one URI record, hence a resource.
        title = record.title
        language = None
        if title is not None:
            titles = record.titles
            language = "en" if "en" in titles else next(iter(titles))
        return NdefItem("smartposter", record.resource.iri, title=title, language=language,
                        record_type=record.type)
    return NdefItem("other", record.type, record_type=record.type)


def candidate_strings(items: list[NdefItem]) -> list[str]:
    """The strings worth classifying (URIs, texts, Smart Poster URIs), in tag order."""
    return [item.value for item in items if item.kind != "other"]


# --------------------------------------------------------------------------- encoders


def _encode(*records: ndef.Record) -> bytes:
    try:
        raw = b"".join(ndef.message_encoder(list(records)))
    except _NDEFLIB_ERRORS as exc:  # ValueError covers unencodable text (lone surrogates)
        raise NdefError(f"cannot encode: {exc}") from None
    if len(raw) > MAX_NDEF_BYTES:
        raise NdefError(f"encoded NDEF message too large: {len(raw)} bytes > {MAX_NDEF_BYTES}")
    return raw


def _check_uri(uri: str) -> None:
    # The URI record forbids control characters; ndeflib would encode them and then refuse
    # to decode its own output.
    if not uri:
        raise NdefError("cannot encode an empty URI")
    if any(ord(ch) <= 0x1F for ch in uri):
        raise NdefError("cannot encode a URI containing control characters")


def encode_uri(uri: str) -> bytes:
    """A one-record NDEF message holding ``uri`` (with the standard prefix abbreviation)."""
    _check_uri(uri)
    return _encode(ndef.UriRecord(uri))


def encode_uris(*uris: str) -> bytes:
    """One NDEF message of several URI records, in order.

    What a phone's loyalty app presents over NFC when it sends a product it
    scanned together with the customer's app token: one read that says who.
    """
    if not uris:
        raise NdefError("cannot encode an empty message")
    for uri in uris:
        _check_uri(uri)
    return _encode(*(ndef.UriRecord(u) for u in uris))


def encode_text(text: str, language: str = "en") -> bytes:
    """A one-record NDEF message holding ``text`` in UTF-8 with an IANA language code."""
    if not 1 <= len(language) <= 63 or not language.isascii():
        raise NdefError("language code must be 1 to 63 ASCII characters")
    try:
        record = ndef.TextRecord(text, language, "UTF-8")
    except _NDEFLIB_ERRORS as exc:
        raise NdefError(f"cannot encode: {exc}") from None
    return _encode(record)


def encode_smartposter(uri: str, title: str | None = None) -> bytes:
    """A one-record Smart Poster message for ``uri`` with an optional English title."""
    _check_uri(uri)
    try:
        record = ndef.SmartposterRecord(uri, title)
    except _NDEFLIB_ERRORS as exc:
        raise NdefError(f"cannot encode: {exc}") from None
    return _encode(record)
