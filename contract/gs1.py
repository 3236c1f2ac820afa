"""GTINs, GS1 element strings and GS1 Digital Link URIs.

Everything a shelf reader or scanner sends is untrusted: a product barcode, the QR code on a
pack (GS1 Digital Link) or a GS1-128/DataMatrix element string. Every part of Vitrine turns
them into the same thing, a GTIN-14 plus the other application identifiers (AIs), through this
module, so a product is identified identically whether it was tapped, scanned or photographed.

The parsers are strict on purpose: a value we cannot validate is rejected with
:class:`GS1Error` (whose message says why) rather than passed on, because the edge stores the
reason when it quarantines a scan and a wrong GTIN in the interest stream is worse than none.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

__all__ = [
    "DEFAULT_DOMAIN",
    "GS",
    "GTIN_LENGTHS",
    "KNOWN_AIS",
    "DigitalLink",
    "GS1Error",
    "gtin_check_digit",
    "looks_like_digital_link",
    "normalize_gtin",
    "parse_digital_link",
    "parse_element_string",
]

#: The ASCII group separator scanners transmit for FNC1 between variable-length AIs.
GS = "\x1d"

#: Resolver used when a :class:`DigitalLink` is built without one.
DEFAULT_DOMAIN = "https://id.gs1.org"

#: Longest Digital Link URI accepted. QR codes top out around 4 KB; a GS1 Digital Link on a
#: pack is far shorter, and bounding it keeps the regexes below trivially cheap.
MAX_URI_CHARS = 2048

#: Longest element string accepted (a GS1 DataMatrix holds at most ~2.3 KB).
MAX_ELEMENT_STRING_CHARS = 2048

GTIN_LENGTHS = (8, 12, 13, 14)

# GS1 AI encodable character set 82 (GS1 General Specifications, figure 7.11-1).
_CSET82 = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]*")
_DIGITS = re.compile(r"[0-9]+")


class GS1Error(ValueError):
    """Input that claims to be GS1 data but is not valid; ``str()`` gives the reason."""


def _is_digits(value: str) -> bool:
    # str.isdigit() accepts non-ASCII digits such as "١"; GS1 data is ASCII only.
    return _DIGITS.fullmatch(value) is not None


def gtin_check_digit(body: str) -> int:
    """Return the GS1 mod-10 check digit for ``body`` (all digits except the check digit).

    Weights alternate 3, 1, 3, ... from the rightmost digit, so the same function serves
    GTIN-8/12/13/14, GLN and SSCC, and left zero-padding never changes the result.
    """
    if not _is_digits(body):
        raise GS1Error(f"not digits: {body!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def _check_digit_ok(value: str) -> bool:
    return gtin_check_digit(value[:-1]) == int(value[-1])


def normalize_gtin(value: str) -> str:
    """Validate a GTIN-8/12/13/14 and return it as GTIN-14 (left-padded with zeros).

    GTIN-14 is the single storage form across Vitrine so that an EAN-13 scanned at one shelf
    and the same product's GTIN-14 from a Digital Link join on equal strings.
    """
    if not _is_digits(value):
        raise GS1Error(f"not digits: GTIN {value[:32]!r}")
    if len(value) not in GTIN_LENGTHS:
        raise GS1Error(f"bad length: GTIN must have 8, 12, 13 or 14 digits, got {len(value)}")
    expected = gtin_check_digit(value[:-1])
    if expected != int(value[-1]):
        raise GS1Error(f"bad check digit: GTIN {value} should end in {expected}")
    return value.zfill(14)


# --------------------------------------------------------------------------- AI table


_Check = Callable[[str, str], None]  # (ai, value) -> None, raises GS1Error


@dataclass(frozen=True)
class _AISpec:
    """Format of one application identifier's value."""

    min_len: int
    max_len: int
    numeric: bool
    check: _Check | None = None


def _check_digit(ai: str, value: str) -> None:
    if not _check_digit_ok(value):
        raise GS1Error(f"bad check digit: AI ({ai}) {value}")


def _check_date(ai: str, value: str) -> None:
    # YYMMDD. DD may be 00, meaning "end of month" (GS1 General Specifications 7.12).
    year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:6])
    if not 1 <= month <= 12:
        raise GS1Error(f"bad date: AI ({ai}) {value} has month {month:02d}")
    if day > calendar.monthrange(year, month)[1]:
        raise GS1Error(f"bad date: AI ({ai}) {value} has day {day:02d}")


def _x(max_len: int) -> _AISpec:
    return _AISpec(1, max_len, numeric=False)


def _n(min_len: int, max_len: int | None = None, check: _Check | None = None) -> _AISpec:
    return _AISpec(min_len, min_len if max_len is None else max_len, numeric=True, check=check)


def _build_ai_table() -> dict[str, _AISpec]:
    date = _n(6, check=_check_date)
    table: dict[str, _AISpec] = {
        "00": _n(18, check=_check_digit),  # SSCC
        "01": _n(14, check=_check_digit),  # GTIN
        "02": _n(14, check=_check_digit),  # GTIN of contained trade items
        "10": _x(20),  # batch/lot
        "11": date,  # production date
        "12": date,  # due date
        "13": date,  # packaging date
        "15": date,  # best before
        "16": date,  # sell by
        "17": date,  # expiry
        "20": _n(2),  # variant
        "21": _x(20),  # serial
        "22": _x(20),  # consumer product variant (CPV)
        "240": _x(30),
        "241": _x(30),
        "250": _x(30),
        "251": _x(30),
        "254": _x(20),
        "30": _n(1, 8),  # variable count
        "37": _n(1, 8),  # count of contained trade items
        "400": _x(30),  # customer's purchase order
        "401": _x(30),  # GINC
        "402": _n(17, check=_check_digit),  # GSIN
        "403": _x(30),  # routing code
        "420": _x(20),  # ship-to postal code
        "8200": _x(70),  # extended packaging URL
        "90": _x(30),  # mutually agreed between partners
    }
    for family in range(310, 317):  # trade measures: 310n net weight kg ... 316n
        for decimals in range(6):
            table[f"{family}{decimals}"] = _n(6)
    for decimals in range(10):
        table[f"392{decimals}"] = _n(1, 15)  # amount payable, single monetary area
        table[f"393{decimals}"] = _n(4, 18)  # amount payable with ISO 4217 currency
    for gln_ai in range(410, 416):  # ship to, bill to, purchased from, ... GLNs
        table[str(gln_ai)] = _n(13, check=_check_digit)
    for internal in range(91, 100):  # company internal information
        table[str(internal)] = _x(90)
    return table


_AI_TABLE = _build_ai_table()

#: Application identifiers this module validates in element strings and Digital Links.
KNOWN_AIS: frozenset[str] = frozenset(_AI_TABLE)

# AIs whose value length is fixed by the first two digits of the AI (GS1 General
# Specifications figure 7.8.5-2): they never need an FNC1 separator in raw element strings.
_PREDEFINED_LENGTH_PREFIXES = frozenset(
    {"00", "01", "02", "03", "04", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20",
     "31", "32", "33", "34", "35", "36", "41"}
)

# Any other numeric Digital Link query key of AI size is still an AI we must not confuse with a
# tracking parameter; we cannot check its format, so it gets the loosest GS1 rule.
_GENERIC_AI = _x(90)


def _validate_ai(ai: str, value: str, spec: _AISpec) -> None:
    if not spec.min_len <= len(value) <= spec.max_len:
        want = (str(spec.min_len) if spec.min_len == spec.max_len
                else f"{spec.min_len}..{spec.max_len}")
        raise GS1Error(f"bad length: AI ({ai}) needs {want} characters, got {len(value)}")
    if spec.numeric:
        if not _is_digits(value):
            raise GS1Error(f"not digits: AI ({ai}) value {value[:32]!r}")
    elif _CSET82.fullmatch(value) is None:
        raise GS1Error(f"bad character: AI ({ai}) value {value[:32]!r} is outside GS1 set 82")
    if spec.check is not None:
        spec.check(ai, value)


# --------------------------------------------------------------------------- element strings

_BRACKETED_AI = re.compile(r"\(([0-9]{2,4})\)")


def parse_element_string(text: str) -> dict[str, str]:
    """Parse a GS1 element string into ``{ai: value}`` in the order they appear.

    Two forms come out of scanners: the human-readable bracketed form
    ``(01)09506000134352(17)261231(10)ABC`` and the raw form, where AIs are concatenated and
    variable-length values are terminated by the GS character (FNC1). In bracketed form a
    value cannot contain a bracketed AI-looking sequence such as ``(12)``: that is where the
    next AI starts. Only :data:`KNOWN_AIS` are accepted because the raw form cannot be split
    without knowing each AI's length.
    """
    if not text:
        raise GS1Error("empty element string")
    if len(text) > MAX_ELEMENT_STRING_CHARS:
        raise GS1Error(f"too long: element string of {len(text)} characters")
    pairs = _split_bracketed(text) if text.startswith("(") else _split_raw(text)
    result: dict[str, str] = {}
    for ai, value in pairs:
        if ai in result:
            raise GS1Error(f"duplicate AI ({ai})")
        spec = _AI_TABLE.get(ai)
        if spec is None:
            raise GS1Error(f"unknown AI ({ai})")
        _validate_ai(ai, value, spec)
        result[ai] = value
    return result


def _split_bracketed(text: str) -> Iterator[tuple[str, str]]:
    marks = list(_BRACKETED_AI.finditer(text))
    if not marks or marks[0].start() != 0:
        raise GS1Error("bad element string: must start with a bracketed AI such as (01)")
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = len(text) if following is None else following.start()
        yield mark.group(1), text[mark.end():end]


def _split_raw(text: str) -> Iterator[tuple[str, str]]:
    pos = 1 if text.startswith(GS) else 0  # some scanners transmit the leading FNC1
    if pos == len(text):
        raise GS1Error("empty element string")
    while pos < len(text):
        ai = next((text[pos:pos + n] for n in (2, 3, 4) if text[pos:pos + n] in _AI_TABLE), None)
        if ai is None:
            raise GS1Error(f"unknown AI at position {pos}: {text[pos:pos + 4]!r}")
        start = pos + len(ai)
        spec = _AI_TABLE[ai]
        if ai[:2] in _PREDEFINED_LENGTH_PREFIXES:
            end = start + spec.max_len
            if end > len(text):
                raise GS1Error(f"bad length: AI ({ai}) value is truncated")
            pos = end + 1 if text.startswith(GS, end) else end  # tolerate a superfluous FNC1
        else:
            sep = text.find(GS, start)
            end = len(text) if sep == -1 else sep
            pos = end + 1
        yield ai, text[start:end]


# --------------------------------------------------------------------------- Digital Link

_QUALIFIER_ORDER = ("22", "10", "21")
_PATH_ALIASES = {"01": "01", "gtin": "01", "22": "22", "cpv": "22", "10": "10", "lot": "10",
                 "21": "21", "ser": "21"}
_URI = re.compile(r"(?i:(https?))://([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?")
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_AUTHORITY = re.compile(rf"(?:(?:{_HOST_LABEL}\.)*{_HOST_LABEL}|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?")
_SEGMENT = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*")
_QUERY = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
_QUERY_AI_KEY = re.compile(r"[0-9]{2,4}")
_SHAPE = re.compile(r"(?i:https?)://[^/?#]*(?:/[^/?#]*)*?/(?:01|gtin)/[0-9]{8,14}(?:[/?#]|\Z)")


@dataclass(frozen=True)
class DigitalLink:
    """A parsed GS1 Digital Link: the product and whatever the brand encoded about this item.

    ``ais`` holds every AI except the GTIN (path qualifiers and query AIs alike), ``extra``
    the non-GS1 query parameters (campaign tags and the like) so nothing is lost, and
    ``domain`` the scheme and host the link pointed at. The dicts are excluded from hashing so
    instances stay usable as set members despite being mutable containers.
    """

    gtin: str
    ais: dict[str, str] = field(default_factory=dict, hash=False)
    extra: dict[str, str] = field(default_factory=dict, hash=False)
    domain: str = DEFAULT_DOMAIN

    def to_uri(self, domain: str | None = None) -> str:
        """Return the canonical URI, on ``domain`` (e.g. the store's resolver) if given.

        Canonical means: primary key ``01`` with a GTIN-14, qualifiers in the order 22, 10, 21,
        then the remaining AIs sorted as query parameters, values percent-encoded. ``extra``
        parameters are left out: they do not identify the item, and two scans of the same item
        must produce the same URI.
        """
        base = (self.domain if domain is None else domain).rstrip("/")
        segments = [base, "01", self.gtin]
        for ai in _QUALIFIER_ORDER:
            if ai in self.ais:
                segments += [ai, quote(self.ais[ai], safe="")]
        uri = "/".join(segments)
        query = [f"{ai}={quote(value, safe='')}" for ai, value in sorted(self.ais.items())
                 if ai not in _QUALIFIER_ORDER]
        return f"{uri}?{'&'.join(query)}" if query else uri


def looks_like_digital_link(uri: str) -> bool:
    """Tell whether ``uri`` is shaped like a GS1 Digital Link (``/01/`` followed by digits).

    Used to decide whether a failed :func:`parse_digital_link` means "not GS1 at all" (an
    ordinary web link) or "GS1 data that is wrong" (worth quarantining with the reason).
    """
    return len(uri) <= MAX_URI_CHARS and _SHAPE.match(uri) is not None


def _decode(raw: str, what: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise GS1Error(f"bad percent-encoding in {what}") from None


def parse_digital_link(uri: str) -> DigitalLink:
    """Parse a GS1 Digital Link URI on any domain, with an optional path prefix.

    Accepts ``https://brand.example/shop/01/09506000134352/10/ABC?17=261231``: the GTIN
    (GTIN-8/12/13 are padded to 14), path qualifiers 22, 10, 21 in that order, AIs in the
    query. The fragment is ignored. Anything else raises :class:`GS1Error`.
    """
    if len(uri) > MAX_URI_CHARS:
        raise GS1Error(f"too long: URI of {len(uri)} characters")
    if any(not "\x21" <= ch <= "\x7e" for ch in uri):
        raise GS1Error("bad character: a Digital Link is printable ASCII without spaces")
    match = _URI.fullmatch(uri)
    if match is None:
        raise GS1Error("not an http(s) URI")
    scheme, authority, path, query = match.groups()
    authority = authority.lower()
    if _AUTHORITY.fullmatch(authority) is None:
        raise GS1Error(f"bad host: {authority[:64]!r}")
    gtin, ais = _parse_path(path)
    extra: dict[str, str] = {}
    if query:
        _parse_query(query, ais, extra)
    return DigitalLink(gtin=gtin, ais=ais, extra=extra, domain=f"{scheme.lower()}://{authority}")


def _parse_path(path: str) -> tuple[str, dict[str, str]]:
    segments = path.split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()  # tolerate one trailing slash
    for segment in segments:
        if _SEGMENT.fullmatch(segment) is None:
            raise GS1Error("bad character in URI path")
    start = _find_primary_key(segments)
    if start is None:
        if any(_PATH_ALIASES.get(s) == "01" for s in segments):
            raise GS1Error("bad path: /01/{gtin} must be followed by /22, /10, /21 only, "
                           "in that order")
        raise GS1Error("not a Digital Link: no /01/{gtin} primary key in the path")
    gtin = normalize_gtin(_decode(segments[start + 1], "GTIN"))
    ais: dict[str, str] = {}
    for i in range(start + 2, len(segments), 2):
        ai = _PATH_ALIASES[segments[i]]
        value = _decode(segments[i + 1], f"AI ({ai})")
        _validate_ai(ai, value, _AI_TABLE[ai])
        ais[ai] = value
    return gtin, ais


def _find_primary_key(segments: list[str]) -> int | None:
    """Index of the ``01`` segment after which the path is a valid key plus qualifiers.

    The leftmost such index wins, so a prefix is only what precedes the whole identifier.
    """
    for start, segment in enumerate(segments):
        tail = segments[start:]
        if _PATH_ALIASES.get(segment) != "01" or len(tail) % 2 or len(tail) > 8:
            continue
        keys = [_PATH_ALIASES.get(s) for s in tail[2::2]]
        ranks = [_QUALIFIER_ORDER.index(k) for k in keys if k in _QUALIFIER_ORDER]
        if len(ranks) == len(keys) and ranks == sorted(set(ranks)):
            return start
    return None


def _parse_query(query: str, ais: dict[str, str], extra: dict[str, str]) -> None:
    if _QUERY.fullmatch(query) is None:
        raise GS1Error("bad character in URI query")
    for param in query.split("&"):
        if not param:
            continue
        raw_key, _, raw_value = param.partition("=")
        key = _decode(raw_key, "query key")
        value = _decode(raw_value, f"query parameter {key[:16]!r}")
        if _QUERY_AI_KEY.fullmatch(key) is None:
            extra.setdefault(key, value)
            continue
        if key == "01":
            raise GS1Error("bad query: the GTIN (01) belongs in the path")
        if key in ais:
            raise GS1Error(f"duplicate AI ({key})")
        _validate_ai(key, value, _AI_TABLE.get(key, _GENERIC_AI))
        ais[key] = value
