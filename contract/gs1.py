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

_CSET39 = re.compile(r"[#\-/0-9A-Z]*")
_CSET64 = re.compile(r"[A-Za-z0-9_\-=]*")


@dataclass(frozen=True)
class _Part:
    """One component of an AI's value: its character set, length and content check."""

    cset: str  # "N" digits, "X" GS1 set 82, "Y" set 39, "Z" set 64
    min_len: int
    max_len: int
    optional: bool = False
    lint: str = ""  # "c" check digit, "d" date (DD may be 00), "D" date, "t" time HHMM


@dataclass(frozen=True)
class _AISpec:
    """Format of one application identifier's value: one or more components in sequence."""

    parts: tuple[_Part, ...]

    @property
    def min_len(self) -> int:
        return sum(p.min_len for p in self.parts if not p.optional)

    @property
    def max_len(self) -> int:
        return sum(p.max_len for p in self.parts)

    @property
    def numeric(self) -> bool:
        return all(p.cset == "N" for p in self.parts)


_PART = re.compile(r"(\[)?([NXYZ])(\.\.)?([0-9]+)([cdDt]?)(\])?")


def _spec(text: str) -> _AISpec:
    """``"N13c [X..17]"``: components in order; ``..`` variable length, ``[...]`` optional,
    then a content check: ``c`` check digit, ``d`` date (day 00 allowed), ``D`` date,
    ``t`` time of day."""
    parts = []
    for token in text.split():
        m = _PART.fullmatch(token)
        if m is None:
            raise ValueError(f"bad AI spec {text!r}")
        opt, cset, var, n, lint, _ = m.groups()
        parts.append(_Part(cset, 1 if var else int(n), int(n), bool(opt), lint))
    return _AISpec(tuple(parts))


def _check_date(ai: str, value: str, day_zero: bool = True) -> None:
    # YYMMDD. DD may be 00, meaning "end of month", where the AI allows it (GS1 General
    # Specifications 7.12).
    year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:6])
    if not 1 <= month <= 12:
        raise GS1Error(f"bad date: AI ({ai}) {value} has month {month:02d}")
    if day > calendar.monthrange(year, month)[1] or (day == 0 and not day_zero):
        raise GS1Error(f"bad date: AI ({ai}) {value} has day {day:02d}")


#: Every GS1 application identifier with the format of its value (GS1 General
#: Specifications, section 3, as published in the GS1 Barcode Syntax Dictionary), in
#: this module's own notation (see :func:`_spec`). Ranges are written ``first-last``.
#: Content rules beyond character set, length, check digits, dates and times (ISO
#: country and currency codes, IBAN, coordinates...) are not checked here.
_AI_FORMATS: tuple[tuple[str, str], ...] = (
    ("00", "N18c"), ("01", "N14c"), ("02", "N14c"), ("10", "X..20"),
    ("11", "N6d"), ("12", "N6d"), ("13", "N6d"), ("15", "N6d"), ("16", "N6d"), ("17", "N6d"),
    ("20", "N2"), ("21", "X..20"), ("22", "X..20"), ("235", "X..28"),
    ("240", "X..30"), ("241", "X..30"), ("242", "N..6"), ("243", "X..20"), ("250", "X..30"),
    ("251", "X..30"), ("253", "N13c [X..17]"), ("254", "X..20"), ("255", "N13c [N..12]"),
    ("30", "N..8"), ("37", "N..8"),
    ("3900-3909", "N..15"), ("3910-3919", "N3 N..15"), ("3920-3929", "N..15"),
    ("3930-3939", "N3 N..15"), ("3940-3943", "N4"), ("3950-3955", "N6"),
    ("400", "X..30"), ("401", "X..30"), ("402", "N17c"), ("403", "X..30"),
    ("410-417", "N13c"), ("420", "X..20"), ("421", "N3 X..9"), ("422", "N3"),
    ("423", "N..15"), ("424", "N3"), ("425", "N..15"), ("426", "N3"), ("427", "X..3"),
    ("4300-4301", "X..35"), ("4302-4306", "X..70"), ("4307", "X2"), ("4308", "X..30"),
    ("4309", "N10 N10"), ("4310-4311", "X..35"), ("4312-4316", "X..70"), ("4317", "X2"),
    ("4318", "X..20"), ("4319", "X..30"), ("4320", "X..35"), ("4321-4323", "N1"),
    ("4324-4325", "N6d N4t"), ("4326", "N6D"), ("4330-4333", "N6 [X1]"),
    ("7001", "N13"), ("7002", "X..30"), ("7003", "N6D N4t"), ("7004", "N..4"),
    ("7005", "X..12"), ("7006", "N6D"), ("7007", "N6D [N6D]"), ("7008", "X..3"),
    ("7009", "X..10"), ("7010", "X..2"), ("7011", "N6D [N4t]"), ("7020-7022", "X..20"),
    ("7023", "X..30"), ("7030-7039", "N3 X..27"), ("7040", "N1 X1 X1 X1"),
    ("710-715", "X..20"), ("7230-7239", "X2 X..28"), ("7240", "X..20"), ("7241", "N2"),
    ("7242", "X..25"),
    ("8001", "N4 N5 N3 N1 N1"), ("8002", "X..20"), ("8003", "N1 N13c [X..16]"),
    ("8004", "X..30"), ("8005", "N6"), ("8006", "N14c N4"), ("8007", "X..34"),
    ("8008", "N8 [N..4]"), ("8009", "X..50"), ("8010", "Y..30"), ("8011", "N..12"),
    ("8012", "X..20"), ("8013", "X..25"), ("8017-8018", "N18c"), ("8019", "N..10"),
    ("8020", "X..25"), ("8026", "N14c N4"), ("8030", "Z..90"), ("8110", "X..70"),
    ("8111", "N4"), ("8112", "X..70"), ("8200", "X..70"), ("90", "X..30"),
    ("91-99", "X..90"),
)
#: Trade measures: 31nn-36nn families, six decimal positions each (N6).
_MEASURE_FAMILIES = (*range(310, 317), *range(320, 330), *range(330, 338), *range(340, 350),
                     *range(350, 358), *range(360, 370))


def _build_ai_table() -> dict[str, _AISpec]:
    table: dict[str, _AISpec] = {}
    for ais, fmt in _AI_FORMATS:
        first, _, last = ais.partition("-")
        spec = _spec(fmt)
        for n in range(int(first), int(last or first) + 1):
            table[str(n).zfill(len(first))] = spec
    for family in _MEASURE_FAMILIES:
        for decimals in range(6):
            table[f"{family}{decimals}"] = _spec("N6")
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


def _validate_ai(ai: str, value: str, spec: _AISpec) -> None:
    if not spec.min_len <= len(value) <= spec.max_len:
        want = (str(spec.min_len) if spec.min_len == spec.max_len
                else f"{spec.min_len}..{spec.max_len}")
        raise GS1Error(f"bad length: AI ({ai}) needs {want} characters, got {len(value)}")
    pos = 0
    for i, part in enumerate(spec.parts):
        left = len(value) - pos
        if left == 0 and part.optional:
            break
        last = i == len(spec.parts) - 1
        size = left if last or part.min_len != part.max_len else part.max_len
        piece = value[pos:pos + size]
        if not part.min_len <= len(piece) <= part.max_len:
            raise GS1Error(f"bad length: AI ({ai}) value {value[:32]!r}")
        _check_part(ai, value, piece, part)
        pos += size
    if pos != len(value):
        raise GS1Error(f"bad length: AI ({ai}) value {value[:32]!r} is too long")


def _check_part(ai: str, value: str, piece: str, part: _Part) -> None:
    if part.cset == "N":
        if not _is_digits(piece):
            raise GS1Error(f"not digits: AI ({ai}) value {value[:32]!r}")
    elif part.cset == "X":
        if _CSET82.fullmatch(piece) is None:
            raise GS1Error(f"bad character: AI ({ai}) value {value[:32]!r} is outside GS1 set 82")
    elif part.cset == "Y":
        if _CSET39.fullmatch(piece) is None:
            raise GS1Error(f"bad character: AI ({ai}) value {value[:32]!r} is outside GS1 set 39")
    elif _CSET64.fullmatch(piece) is None:
        raise GS1Error(f"bad character: AI ({ai}) value {value[:32]!r} is outside GS1 set 64")
    if part.lint == "c" and not _check_digit_ok(piece):
        raise GS1Error(f"bad check digit: AI ({ai}) {value}")
    if part.lint in ("d", "D"):
        _check_date(ai, piece, day_zero=part.lint == "d")
    if part.lint == "t" and (int(piece[:2]) > 23 or int(piece[2:4]) > 59):
        raise GS1Error(f"bad time: AI ({ai}) {value} has {piece[:2]}:{piece[2:4]}")


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

#: GS1 Digital Link primary keys and, for each, the alternative sequences of key
#: qualifiers it may be followed by in the path (each qualifier optional, order fixed):
#: ``/01/{gtin}/22/{cpv}/10/{lot}/21/{serial}`` or ``/01/{gtin}/235/{tpx}``.
DL_PRIMARY_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "00": ((),), "01": (("22", "10", "21"), ("235",)), "253": ((),), "255": ((),),
    "401": ((),), "402": ((),), "414": (("254",), ("7040",)), "415": (("8020",),),
    "417": (("7040",),), "8003": ((),), "8004": (("7040",),), "8006": (("22", "10", "21"),),
    "8010": (("8011",),), "8013": ((),), "8017": (("8019",),), "8018": (("8019",),),
}
#: Deprecated "convenience alpha" path names (``/gtin/``): refused, as GS1's reference
#: parser does by default; the error names the numeric AI to use instead.
_CONVENIENCE_ALPHAS = {
    "cpid": "8010", "cpsn": "8011", "cpv": "22", "gcn": "255", "gdti": "253", "giai": "8004",
    "ginc": "401", "gln": "414", "glnx": "254", "gmn": "8013", "grai": "8003", "gsin": "402",
    "gsrn": "8018", "gsrnp": "8017", "gtin": "01", "itip": "8006", "lot": "10", "party": "417",
    "refno": "8020", "ser": "21", "srin": "8019", "sscc": "00",
}
_QUALIFIERS = frozenset(q for alts in DL_PRIMARY_KEYS.values() for seq in alts for q in seq)
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_SCHEMES = {"https://": "https", "HTTPS://": "https", "http://": "http", "HTTP://": "http"}
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_AUTHORITY = re.compile(
    rf"(?:(?:{_HOST_LABEL}\.)*{_HOST_LABEL}\.?|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?")
# Shape of a Digital Link whose key is all digits: worth quarantining when it fails to
# parse (alphanumeric keys such as 8004 are not guessed from an ordinary URL's shape).
_SHAPE = re.compile(
    r"(?i:https?)://[^/?#]*(?:/[^/?#]*)*?/(?:(?:01|gtin)/[0-9]{8,14}|00/[0-9]{18}"
    r"|(?:414|415|417|253|255)/[0-9]{13}|402/[0-9]{17}|(?:8017|8018)/[0-9]{18}"
    r"|8006/[0-9]{18})(?:[/?#]|\Z)")


@dataclass(frozen=True)
class DigitalLink:
    """A parsed GS1 Digital Link: the item's primary key and what the brand encoded about it.

    ``key`` is the primary key AI (``01`` for a product) and ``gtin`` its GTIN-14 when
    the key is ``01`` (None otherwise; ``key_value`` holds any key's value). ``ais``
    holds every other AI (path qualifiers and query AIs alike), ``extra`` the non-GS1
    query parameters (campaign tags and the like) so nothing is lost, and ``domain`` the
    scheme and host the link pointed at. The dicts are excluded from hashing so
    instances stay usable as set members despite being mutable containers.
    """

    gtin: str | None
    ais: dict[str, str] = field(default_factory=dict, hash=False)
    extra: dict[str, str] = field(default_factory=dict, hash=False)
    domain: str = DEFAULT_DOMAIN
    key: str = "01"
    key_value: str = ""

    def __post_init__(self) -> None:
        if self.key == "01" and not self.key_value and self.gtin:
            object.__setattr__(self, "key_value", self.gtin)

    def to_uri(self, domain: str | None = None) -> str:
        """Return the canonical URI, on ``domain`` (e.g. the store's resolver) if given.

        Canonical means: the primary key, then its qualifiers in the standard's order
        (for ``01``: 22, 10, 21, or 235), then the remaining AIs sorted as query
        parameters, values percent-encoded. ``extra`` parameters are left out: they do
        not identify the item, and two scans of the same item must produce the same URI.
        """
        base = (self.domain if domain is None else domain).rstrip("/")
        segments = [base, self.key, quote(self.key_value, safe="")]
        qualifiers = _qualifier_sequence(self.key, [a for a in self.ais if a in _QUALIFIERS])
        for ai in qualifiers:
            segments += [ai, quote(self.ais[ai], safe="")]
        uri = "/".join(segments)
        query = [f"{ai}={quote(value, safe='')}" for ai, value in sorted(self.ais.items())
                 if ai not in qualifiers]
        return f"{uri}?{'&'.join(query)}" if query else uri


def _qualifier_sequence(key: str, present: list[str]) -> list[str]:
    """The qualifiers of ``present`` that go in the path, in order (the best alternative)."""
    best: list[str] = []
    for alternative in DL_PRIMARY_KEYS.get(key, ((),)):
        chosen = [q for q in alternative if q in present]
        if len(chosen) > len(best):
            best = chosen
    return best


def _valid_path_sequence(key: str, qualifiers: list[str]) -> bool:
    for alternative in DL_PRIMARY_KEYS[key]:
        ranks = [alternative.index(q) for q in qualifiers if q in alternative]
        if len(ranks) == len(qualifiers) and ranks == sorted(set(ranks)):
            return True
    return False


def looks_like_digital_link(uri: str) -> bool:
    """Tell whether ``uri`` is shaped like a GS1 Digital Link (a numeric key and its value).

    Used to decide whether a failed :func:`parse_digital_link` means "not GS1 at all" (an
    ordinary web link) or "GS1 data that is wrong" (worth quarantining with the reason).
    """
    return len(uri) <= MAX_URI_CHARS and _SHAPE.match(uri) is not None


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _decode(raw: str, what: str, *, query: bool = False) -> str:
    if _BAD_ESCAPE.search(raw):
        raise GS1Error(f"bad percent-encoding in {what}: % must be followed by two hex digits")
    if query:
        raw = raw.replace("+", " ")  # form encoding, as GS1's reference parser reads it
    try:
        text = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise GS1Error(f"bad percent-encoding in {what}") from None
    if "\x00" in text:
        raise GS1Error(f"bad percent-encoding in {what}: NUL")
    return text


def parse_digital_link(uri: str) -> DigitalLink:
    """Parse a GS1 Digital Link URI (GS1 Digital Link standard 1.x, uncompressed form).

    ``https://brand.example/shop/01/09506000134352/10/ABC?17=261231``: any domain, any
    path prefix, every primary key of :data:`DL_PRIMARY_KEYS` with its qualifiers in
    order, data attributes in the query. The rules are those of GS1's reference parser
    (gs1-syntax-engine): see docs/protocol.md section 6.4. Anything else raises
    :class:`GS1Error` saying why.
    """
    if len(uri) > MAX_URI_CHARS:
        raise GS1Error(f"too long: URI of {len(uri)} characters")
    if not uri or _URI_CHARS.fullmatch(uri) is None:
        raise GS1Error("bad character: a Digital Link uses URI characters only "
                       "(printable ASCII, no spaces, no quotes or brackets outside a host)")
    scheme = next((name for prefix, name in _SCHEMES.items() if uri.startswith(prefix)), None)
    if scheme is None:
        raise GS1Error("not an http(s) URI (scheme http or https, all lower or all upper case)")
    rest = uri[len(scheme) + 3:]
    rest, _, _fragment = rest.partition("#")
    rest, has_query, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    authority = authority.lower()
    if not authority or _AUTHORITY.fullmatch(authority) is None:
        raise GS1Error(f"bad host: {authority[:64]!r}")
    if not slash:
        raise GS1Error("not a Digital Link: no path")
    key, key_value, ais = _parse_path(path.split("/"))
    extra: dict[str, str] = {}
    if has_query:
        _parse_query(query, key, ais, extra)
    gtin = key_value if key == "01" else None
    return DigitalLink(gtin=gtin, ais=ais, extra=extra, domain=f"{scheme}://{authority}",
                       key=key, key_value=key_value)


def _parse_path(segments: list[str]) -> tuple[str, str, dict[str, str]]:
    # Walk back from the end in /AI/value pairs while the AI is a known AI; the first
    # primary key met is the root: what precedes it is the resolver's own path prefix.
    root = None
    for i in range(len(segments) - 2, -1, -2):
        ai = segments[i]
        if ai not in _AI_TABLE:
            break
        if ai in DL_PRIMARY_KEYS:
            root = i
            break
    if root is None:
        if segments and segments[-1] == "":
            raise GS1Error("bad path: a trailing slash is not allowed after the last value")
        alpha = next((s for s in segments if s.lower() in _CONVENIENCE_ALPHAS), None)
        if alpha is not None:
            raise GS1Error(f"bad path: /{alpha}/ is a deprecated short name, use "
                           f"/{_CONVENIENCE_ALPHAS[alpha.lower()]}/")
        raise GS1Error("not a Digital Link: no primary key such as /01/{gtin} in the path")
    key = segments[root]
    values: list[tuple[str, str]] = []
    for i in range(root, len(segments), 2):
        ai, raw = segments[i], segments[i + 1]
        if not raw:
            raise GS1Error(f"bad path: empty value for AI ({ai})")
        value = _decode(raw, f"AI ({ai})")
        if ai == "01" and len(value) in (8, 12, 13) and _is_digits(value):
            raise GS1Error(f"bad length: a GTIN in a Digital Link has 14 digits "
                           f"({value.zfill(14)}), got {len(value)}")
        _validate_ai(ai, value, _AI_TABLE[ai])
        values.append((ai, value))
    qualifiers = [ai for ai, _ in values[1:]]
    if not _valid_path_sequence(key, qualifiers):
        allowed = " or ".join("/" + "/".join(seq) if seq else "nothing"
                              for seq in DL_PRIMARY_KEYS[key])
        raise GS1Error(f"bad path: /{key} may be followed by {allowed} (each optional, "
                       "in that order), not /" + "/".join(qualifiers))
    return key, values[0][1], dict(values[1:])


def _parse_query(query: str, key: str, ais: dict[str, str], extra: dict[str, str]) -> None:
    path_qualifiers = list(ais)  # only the path's AIs so far
    for param in query.split("&"):
        if not param:
            continue
        raw_key, has_value, raw_value = param.partition("=")
        name = _decode(raw_key, "query key", query=True)
        if not has_value or not _is_digits(name):
            extra.setdefault(name, _decode(raw_value, f"query parameter {name[:16]!r}",
                                           query=True))
            continue
        if name not in _AI_TABLE:
            raise GS1Error(f"unknown AI ({name[:8]}) in the query: numeric keys must be AIs")
        if not raw_value:
            raise GS1Error(f"bad query: empty value for AI ({name})")
        if name in DL_PRIMARY_KEYS:
            raise GS1Error(f"bad query: AI ({name}) is a primary key, it belongs in the path")
        if name in ais or name == key:
            raise GS1Error(f"duplicate AI ({name})")
        if _fits_path(key, path_qualifiers, name):
            raise GS1Error(f"bad query: AI ({name}) qualifies the key, it belongs in the path")
        value = _decode(raw_value, f"AI ({name})", query=True)
        _validate_ai(name, value, _AI_TABLE[name])
        ais[name] = value


def _fits_path(key: str, path_qualifiers: list[str], ai: str) -> bool:
    """Would ``ai`` make a valid path if inserted among the path's qualifiers?"""
    path = path_qualifiers
    return any(_valid_path_sequence(key, path[:i] + [ai] + path[i:])
               for i in range(len(path) + 1))
