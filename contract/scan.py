"""Classify what a reader read: a product, a loyalty token, a web link or plain text.

The same decision is made for barcode/QR scans and for the strings found on NFC tags, so
product interest and customer identification work the same across every reader. Content that
clearly claims to be GS1 but is invalid raises :class:`~contract.gs1.GS1Error`: the edge
quarantines it with the reason rather than guessing (a misread digit must not become another
product). Everything else falls back to ``url`` or ``text`` and never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from contract.aim import AimPrefix, strip_aim
from contract.gs1 import (
    GS,
    GTIN_LENGTHS,
    KNOWN_AIS,
    GS1Error,
    looks_like_digital_link,
    normalize_gtin,
    parse_digital_link,
    parse_element_string,
)
from contract.loyalty import looks_like_token

__all__ = ["MAX_SCAN_CHARS", "ScanContent", "classify"]

#: Longer input is reported as text without looking further (the qr schema caps it here too).
MAX_SCAN_CHARS = 4096

# Scanners commonly terminate with CR/LF; GS (FNC1) is significant and must not be stripped,
# which rules out str.strip() (it treats \x1c-\x1f as whitespace).
_TRAILING = " \t\r\n"
_WEB_URL = re.compile(r"(?i:https?)://([^/?#]+)([^?#]*)(?:\?([^#]*))?(?:#.*)?")
_BRACKETED = re.compile(r"\(([0-9]{2,4})\)")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class ScanContent:
    """The classification of one read; ``text`` is the content without the AIM prefix.

    ``symbology`` is the AIM symbology name (e.g. ``"GS1 QR Code"``) when the scanner sent a
    prefix. ``ais`` is excluded from hashing because dicts are not hashable.
    """

    kind: Literal["product", "loyalty", "url", "text"]
    gtin: str | None = None
    ais: dict[str, str] = field(default_factory=dict, hash=False)
    token: str | None = None
    text: str = ""
    symbology: str | None = None


def classify(text: str) -> ScanContent:
    """Classify a scanned or tapped string; raise ``GS1Error`` only for broken GS1 claims."""
    aim, body = strip_aim(text)
    symbology = aim.name if aim is not None else None
    body = body.strip(_TRAILING)
    if len(body) > MAX_SCAN_CHARS:
        return ScanContent("text", text=body, symbology=symbology)

    token = _loyalty_token(body)
    if token is not None:
        return ScanContent("loyalty", token=token, text=body, symbology=symbology)
    if _is_web_url(body):
        if looks_like_digital_link(body):
            link = parse_digital_link(body)
            if link.gtin is None:  # a valid link to a pallet, a location, an asset...
                return ScanContent("url", ais=dict(link.ais), text=body, symbology=symbology)
            return ScanContent("product", gtin=link.gtin, ais=dict(link.ais), text=body,
                               symbology=symbology)
        return ScanContent("url", text=body, symbology=symbology)
    if aim is not None and aim.gs1:
        return _gs1_claimed(aim, body, symbology)
    if len(body) in GTIN_LENGTHS and _DIGITS.fullmatch(body):
        return ScanContent("product", gtin=normalize_gtin(body), text=body, symbology=symbology)
    bracketed = _BRACKETED.match(body)
    if bracketed is not None and bracketed.group(1) in KNOWN_AIS:
        return _from_elements(parse_element_string(body), body, symbology)
    if body.startswith(("01", GS + "01")):
        # Without a GS1 symbology identifier, a raw string starting with 01 is only GS1 data
        # if it parses; otherwise it is some other number.
        try:
            elements = parse_element_string(body)
        except GS1Error:
            pass
        else:
            return _from_elements(elements, body, symbology)
    return ScanContent("text", text=body, symbology=symbology)


def _is_web_url(body: str) -> bool:
    return _WEB_URL.fullmatch(body) is not None and not any(ch.isspace() for ch in body)


def _loyalty_token(body: str) -> str | None:
    """A token given bare or inside an app link (last path segment or ``t`` parameter)."""
    if looks_like_token(body):
        return body
    match = _WEB_URL.fullmatch(body)
    if match is None:
        return None
    _, path, query = match.groups()
    last_segment = unquote(path.rpartition("/")[2])
    if looks_like_token(last_segment):
        return last_segment
    for param in (query or "").split("&"):
        key, _, value = param.partition("=")
        if unquote(key) == "t" and looks_like_token(unquote(value)):
            return unquote(value)
    return None


def _gs1_claimed(aim: AimPrefix, body: str, symbology: str | None) -> ScanContent:
    """The scanner says this is GS1 data, so any failure to parse it is a GS1 error."""
    if aim.code == "E":  # EAN/UPC: the data is the bare GTIN
        return ScanContent("product", gtin=normalize_gtin(body), text=body, symbology=symbology)
    return _from_elements(parse_element_string(body), body, symbology)


def _from_elements(elements: dict[str, str], body: str, symbology: str | None) -> ScanContent:
    """A product when the element string carries a GTIN (01).

    Valid GS1 data without one (a pallet's SSCC, a logistics label) is not a product a
    customer showed interest in: it is reported as text, with its AIs for staff tooling.
    """
    gtin = elements.get("01")
    ais = {ai: value for ai, value in elements.items() if ai != "01"}
    if gtin is None:
        return ScanContent("text", ais=ais, text=body, symbology=symbology)
    return ScanContent("product", gtin=gtin, ais=ais, text=body, symbology=symbology)
