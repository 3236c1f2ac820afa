"""GTIN validation, GS1 element strings and GS1 Digital Link parsing."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.gs1 import (
    DEFAULT_DOMAIN,
    GS,
    KNOWN_AIS,
    DigitalLink,
    GS1Error,
    gtin_check_digit,
    looks_like_digital_link,
    normalize_gtin,
    parse_digital_link,
    parse_element_string,
)

PROPS = settings(max_examples=300, deadline=None)
# Round trips draw structured values, which costs far more per example than the fuzzers.
ROUND_TRIPS = settings(max_examples=150, deadline=None)
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
GTIN = "09506000134352"


# --------------------------------------------------------------------------- GTIN


@pytest.mark.parametrize(
    ("value", "gtin14"),
    [
        ("09506000134352", "09506000134352"),
        ("4006381333931", "04006381333931"),
        ("96385074", "00000096385074"),
        ("036000291452", "00036000291452"),
        ("9506000134352", "09506000134352"),
    ],
)
def test_normalize_gtin_known_good(value: str, gtin14: str) -> None:
    assert normalize_gtin(value) == gtin14


@pytest.mark.parametrize(
    ("body", "digit"),
    [("0950600013435", 2), ("400638133393", 1), ("9638507", 4), ("03600029145", 2),
     ("10614141123456789", 7)],
)
def test_check_digit_known_good(body: str, digit: int) -> None:
    assert gtin_check_digit(body) == digit


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("09506000134353", "bad check digit"),
        ("4006381333932", "bad check digit"),
        ("96385075", "bad check digit"),
        ("036000291453", "bad check digit"),
        ("1234567", "bad length"),
        ("123456789", "bad length"),
        ("123456789012345", "bad length"),
        ("", "not digits"),
        ("0950600013435X", "not digits"),
        (" 4006381333931", "not digits"),
        ("٩٦٣٨٥٠٧٤", "not digits"),  # Arabic-Indic digits pass str.isdigit(), not GS1
    ],
)
def test_normalize_gtin_rejects(value: str, reason: str) -> None:
    with pytest.raises(GS1Error, match=reason):
        normalize_gtin(value)


def test_check_digit_rejects_non_digits() -> None:
    with pytest.raises(GS1Error):
        gtin_check_digit("12a")


@PROPS
@given(st.sampled_from([7, 11, 12, 13]).flatmap(
    lambda n: st.text("0123456789", min_size=n, max_size=n)))
def test_gtin_with_computed_check_digit_normalizes(body: str) -> None:
    gtin = body + str(gtin_check_digit(body))
    assert normalize_gtin(gtin) == gtin.zfill(14)
    assert normalize_gtin(normalize_gtin(gtin)) == gtin.zfill(14)


@PROPS
@given(st.text("0123456789", min_size=13, max_size=13), st.integers(0, 13), st.integers(1, 9))
def test_any_single_digit_error_is_detected(body: str, pos: int, delta: int) -> None:
    gtin = body + str(gtin_check_digit(body))
    wrong = gtin[:pos] + str((int(gtin[pos]) + delta) % 10) + gtin[pos + 1:]
    with pytest.raises(GS1Error, match="bad check digit"):
        normalize_gtin(wrong)


@PROPS
@given(st.text())
def test_normalize_gtin_arbitrary_text_only_raises_gs1error(value: str) -> None:
    try:
        result = normalize_gtin(value)
    except GS1Error:
        return
    assert len(result) == 14 and result.isdigit()


# --------------------------------------------------------------------------- element strings


def test_bracketed_element_string() -> None:
    assert parse_element_string("(01)09506000134352(17)261231(10)ABC") == {
        "01": GTIN, "17": "261231", "10": "ABC"}


def test_raw_element_string_with_fnc1_separators() -> None:
    raw = f"0109506000134352" f"10AB-12{GS}" "17261231" "21S/N1"
    assert parse_element_string(raw) == {"01": GTIN, "10": "AB-12", "17": "261231",
                                         "21": "S/N1"}


def test_raw_element_string_order_is_preserved() -> None:
    parsed = parse_element_string(f"10LOT{GS}0109506000134352")
    assert list(parsed) == ["10", "01"]


def test_raw_tolerates_leading_and_superfluous_fnc1() -> None:
    raw = f"{GS}0109506000134352{GS}17261231{GS}"
    assert parse_element_string(raw) == {"01": GTIN, "17": "261231"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(00)106141411234567897", {"00": "106141411234567897"}),
        ("(02)09506000134352(37)24", {"02": GTIN, "37": "24"}),
        ("(11)240229(13)250101(15)260331", {"11": "240229", "13": "250101", "15": "260331"}),
        ("(17)261200", {"17": "261200"}),  # day 00 = end of month
        ("(20)07(22)CPV-1(30)12345678", {"20": "07", "22": "CPV-1", "30": "12345678"}),
        ("(3103)000500(3922)1299", {"3103": "000500", "3922": "1299"}),
        ("(3160)123456(3935)978999", {"3160": "123456", "3935": "978999"}),
        ("(400)PO-4711(410)9506000134352", {"400": "PO-4711", "410": "9506000134352"}),
        ("(415)9506000134352(8200)http://example.com/x?y=1",
         {"415": "9506000134352", "8200": "http://example.com/x?y=1"}),
        ("(91)internal(99)ok", {"91": "internal", "99": "ok"}),
    ],
)
def test_supported_ais(text: str, expected: dict[str, str]) -> None:
    assert parse_element_string(text) == expected


def test_raw_with_every_fixed_length_family_needs_no_separator() -> None:
    raw = "00106141411234567897" + "0109506000134352" + "0209506000134352" + "17261231" \
        + "2007" + "3103000500" + "4109506000134352" + "10LAST"
    assert parse_element_string(raw) == {
        "00": "106141411234567897", "01": GTIN, "02": GTIN, "17": "261231", "20": "07",
        "3103": "000500", "410": "9506000134352", "10": "LAST"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        (GS, "empty"),
        ("(01)09506000134353", "bad check digit"),
        ("(02)12345", "bad length"),
        ("(17)261331", "bad date"),
        ("(17)260230", "bad date"),
        ("(17)2612AB", "not digits"),
        ("(10)" + "A" * 21, "bad length"),
        ("(10)AB C", "bad character"),
        ("(10)", "bad length"),
        ("(01)09506000134352(01)09506000134352", "duplicate"),
        ("(23)X", "unknown AI"),
        ("(3106)000500", "unknown AI"),
        ("x(01)09506000134352", "unknown AI"),
        ("(01", "must start with a bracketed AI"),
        ("01095060001343", "truncated"),
        ("0109506000134352" + "10" + "A" * 21, "bad length"),  # missing FNC1 before next AI
        (f"0109506000134352{GS}{GS}10A", "unknown AI"),
        ("(410)9506000134353", "bad check digit"),
        ("(8200)" + "h" * 71, "bad length"),
    ],
)
def test_element_string_rejects(text: str, reason: str) -> None:
    with pytest.raises(GS1Error, match=reason):
        parse_element_string(text)


def test_element_string_length_is_bounded() -> None:
    with pytest.raises(GS1Error, match="too long"):
        parse_element_string("(91)" + "a" * 5000)


def test_known_ais_are_prefix_free() -> None:
    """Raw element strings are split by AI prefix: no AI may be a prefix of another."""
    for ai in KNOWN_AIS:
        assert not any(other != ai and other.startswith(ai) for other in KNOWN_AIS), ai
    assert {"00", "01", "02", "10", "17", "21", "22", "3103", "3929", "400", "415",
            "8200"} <= KNOWN_AIS


# Strategies for valid AI values, for round trips.
def _with_check_digit(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n - 1, max_size=n - 1).map(
        lambda body: body + str(gtin_check_digit(body)))


DATES = st.dates().map(lambda d: d.strftime("%y%m%d"))


def _x(max_size: int, alphabet: str = CSET82) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=1, max_size=max_size)


def _n(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=min_size, max_size=max_size)


def _value_strategies(alphabet: str) -> dict[str, st.SearchStrategy[str]]:
    return {
        "00": _with_check_digit(18), "01": _with_check_digit(14), "02": _with_check_digit(14),
        "10": _x(20, alphabet), "11": DATES, "15": DATES, "17": DATES, "20": _n(2, 2),
        "21": _x(20, alphabet), "22": _x(20, alphabet), "30": _n(1, 8), "37": _n(1, 8),
        "3103": _n(6, 6), "3922": _n(1, 15), "400": _x(30, alphabet),
        "410": _with_check_digit(13), "8200": _x(70, alphabet), "92": _x(90, alphabet),
    }


def _elements(alphabet: str) -> st.SearchStrategy[dict[str, str]]:
    @st.composite
    def elements(draw: st.DrawFn, pool: st.SearchStrategy[dict[str, str]]) -> dict[str, str]:
        found = draw(pool)
        return {ai: found[ai] for ai in draw(st.permutations(list(found)))}

    optional = st.fixed_dictionaries({}, optional=_value_strategies(alphabet)).filter(bool)
    return elements(optional)


PREDEFINED = ("00", "01", "02", "11", "15", "17", "20", "31", "41")


@ROUND_TRIPS
@given(_elements(CSET82.replace("(", "")))
def test_bracketed_round_trip(elements: dict[str, str]) -> None:
    text = "".join(f"({ai}){value}" for ai, value in elements.items())
    assert parse_element_string(text) == elements


@ROUND_TRIPS
@given(_elements(CSET82))
def test_raw_round_trip(elements: dict[str, str]) -> None:
    parts = []
    for ai, value in elements.items():
        parts.append(ai + value)
        if not ai.startswith(PREDEFINED):
            parts.append(GS)
    assert parse_element_string("".join(parts)) == elements


@PROPS
@given(st.text())
def test_element_string_arbitrary_text_only_raises_gs1error(text: str) -> None:
    try:
        result = parse_element_string(text)
    except GS1Error:
        return
    assert result and set(result) <= KNOWN_AIS


@PROPS
@given(st.text("0123456789()" + GS + "AZaz/", max_size=60))
def test_element_string_digit_soup_only_raises_gs1error(text: str) -> None:
    try:
        result = parse_element_string(text)
    except GS1Error:
        return
    assert set(result) <= KNOWN_AIS


# --------------------------------------------------------------------------- Digital Link


def test_parse_canonical_digital_link() -> None:
    link = parse_digital_link("https://id.gs1.org/01/09506000134352/10/ABC123?17=261231")
    assert link == DigitalLink(gtin=GTIN, ais={"10": "ABC123", "17": "261231"}, extra={},
                               domain="https://id.gs1.org")


def test_parse_any_domain_with_path_prefix_and_extras() -> None:
    link = parse_digital_link(
        "https://Brand.Example:8443/shop/en/01/09506000134352/22/2A/10/ABC/21/S1"
        "?3103=000500&17=261231&utm_source=qr&15=260101#details")
    assert link.gtin == GTIN
    assert link.ais == {"22": "2A", "10": "ABC", "21": "S1", "3103": "000500",
                        "17": "261231", "15": "260101"}
    assert link.extra == {"utm_source": "qr"}
    assert link.domain == "https://brand.example:8443"


@pytest.mark.parametrize(
    ("uri", "gtin"),
    [
        ("https://id.gs1.org/01/00000096385074", "00000096385074"),
        ("HTTPS://example.com/01/09506000134352", GTIN),
        ("https://example.com/01/01/09506000134352", GTIN),  # prefix segment "01"
        ("https://[2001:db8::1]/01/09506000134352", GTIN),
        ("https://a./01/09506000134352", GTIN),  # fully qualified host name
        ("https://a:65535/01/09506000134352", GTIN),
        ("https://192.0.2.1/01/09506000134352", GTIN),
        ("https://a/00/faux/01/09506000134352", GTIN),  # AI-looking prefix: rightmost key
    ],
)
def test_gtin_forms(uri: str, gtin: str) -> None:
    assert parse_digital_link(uri).gtin == gtin


def test_percent_decoding() -> None:
    link = parse_digital_link("https://e.example/01/09506000134352/10/A%2FB%25/21/%41?"
                              "7002=A%2BB")
    assert link.ais == {"10": "A/B%", "21": "A", "7002": "A+B"}
    with pytest.raises(GS1Error, match="set 82"):  # "+" in a query is a space: not GS1 data
        parse_digital_link("https://e.example/01/09506000134352?7002=A+B")


def test_lot_value_equal_to_primary_key_is_not_confused() -> None:
    link = parse_digital_link("https://e.example/01/09506000134352/10/01/21/X")
    assert link.ais == {"10": "01", "21": "X"}


def test_query_ais_and_other_parameters() -> None:
    link = parse_digital_link("https://e.example/01/09506000134352?7003=2601011200&x=1&=y&flag")
    assert link.ais == {"7003": "2601011200"}
    assert link.extra == {"x": "1", "": "y", "flag": ""}


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("https://id.gs1.org/01/09506000134353", "bad check digit"),
        ("https://id.gs1.org/01/09506000134", "bad length"),
        ("https://id.gs1.org/01/ABCDEFGHIJKLMN", "not digits"),
        ("ftp://id.gs1.org/01/09506000134352", "not an http"),
        ("https://id.gs1.org/shop/item/42", "no primary key"),
        ("https://id.gs1.org/01/09506000134352/21/S/10/L", "in that order"),
        ("https://id.gs1.org/01/09506000134352/10/A/10/B", "in that order"),
        ("https://id.gs1.org/01/09506000134352/99/X", "in that order"),
        ("https://id.gs1.org/01/09506000134352/10/L/235/T", "in that order"),
        ("https://id.gs1.org/01/09506000134352/10", "no primary key"),
        ("https://id.gs1.org/01/09506000134352/", "trailing slash"),
        ("https://id.gs1.org/01/09506000134352/10//21/S", "empty value"),
        ("https://id.gs1.org/gtin/09506000134352", "deprecated short name"),
        ("https://id.gs1.org/01/09506000134352/lot/L", "deprecated short name"),
        ("https://id.gs1.org/01/9506000134352", "14 digits"),
        ("https://id.gs1.org/01/96385074", "14 digits"),
        ("HtTpS://id.gs1.org/01/09506000134352", "not an http"),
        ("https://id.gs1.org/01/09506000134352?1=x", "unknown AI"),
        ("https://id.gs1.org/01/09506000134352?9999=x", "unknown AI"),
        ("https://id.gs1.org/01/09506000134352?17=", "empty value"),
        ("https://id.gs1.org/01/09506000134352?10=L", "belongs in the path"),
        ("https://id.gs1.org/01/09506000134352/21/S?10=L", "belongs in the path"),
        ("https://id.gs1.org/01/09506000134352?00=006141411234567890", "belongs in the path"),
        ("https://id.gs1.org/00/006141411234567890/10/L", "in that order"),
        ("https://id.gs1.org/414/9520123456788/21/S", "in that order"),
        ("https://id.gs1.org/01/09506000134352?7003=2613011200", "bad date"),
        ("https://id.gs1.org/01/09506000134352?7003=2601012460", "bad time"),
        ("https://id.gs1.org/01/09506000134352?15=260100&7006=260100", "bad date"),
        ("https://id.gs1.org/01/09506000134352/10/A%00", "NUL"),
        ("https://id.gs1.org/01/09506000134352?17=261331", "bad date"),
        ("https://id.gs1.org/01/09506000134352?17=2612", "bad length"),
        ("https://id.gs1.org/01/09506000134352/10/" + "A" * 21, "bad length"),
        ("https://id.gs1.org/01/09506000134352/10/A%20B", "bad character"),
        ("https://id.gs1.org/01/09506000134352/10/A%FF", "bad percent-encoding"),
        ("https://id.gs1.org/01/09506000134352/10/A%ZZ", "bad percent-encoding"),
        ("https://id.gs1.org/01/09506000134352/10/L?10=L", "duplicate AI"),
        ("https://id.gs1.org/01/09506000134352?17=261231&17=261231", "duplicate AI"),
        ("https://id.gs1.org/01/09506000134352?01=09506000134352", "belongs in the path"),
        ("https://id.gs1.org/01/09506000134352?x=<script>", "bad character"),
        ("https://user@id.gs1.org/01/09506000134352", "bad host"),
        ("https:///01/09506000134352", "bad host"),
        ("https://id.gs1.org", "no path"),
        ("https://[fe80::1%25lo]/01/09506000134352", "bad host"),
        ("https://id.gs1.org/01/09506000134352 ", "bad character"),
        ("https://id.gs1.org/01/09506000134352\n", "bad character"),
        ("https://ïd.gs1.org/01/09506000134352", "bad character"),
        ("https://id.gs1.org/01/09506000134352?3103=5kg000", "not digits"),
    ],
)
def test_parse_digital_link_rejects(uri: str, reason: str) -> None:
    with pytest.raises(GS1Error, match=reason):
        parse_digital_link(uri)


def test_parse_digital_link_length_is_bounded() -> None:
    uri = "https://id.gs1.org/01/09506000134352?x=" + "a" * 3000
    with pytest.raises(GS1Error, match="too long"):
        parse_digital_link(uri)
    assert not looks_like_digital_link(uri)


def test_to_uri_is_canonical() -> None:
    link = DigitalLink(gtin=GTIN, ais={"17": "261231", "21": "S 1/2", "10": "L1", "15": "260101",
                                       "22": "V"}, extra={"utm": "x"}, domain="https://b.example")
    assert link.to_uri() == ("https://b.example/01/09506000134352/22/V/10/L1/21/S%201%2F2"
                             "?15=260101&17=261231")
    assert link.to_uri("https://resolver.store.example/") == (
        "https://resolver.store.example/01/09506000134352/22/V/10/L1/21/S%201%2F2"
        "?15=260101&17=261231")
    assert DigitalLink(gtin=GTIN).to_uri() == f"{DEFAULT_DOMAIN}/01/{GTIN}"


def test_digital_link_is_hashable_and_frozen() -> None:
    link = parse_digital_link(f"https://id.gs1.org/01/{GTIN}/10/A")
    assert link in {link}
    with pytest.raises(dataclasses.FrozenInstanceError):
        link.gtin = "0"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("uri", "shaped"),
    [
        (f"https://id.gs1.org/01/{GTIN}", True),
        (f"https://x.example/p/gtin/{GTIN}?17=1", True),
        ("https://x.example/00/006141411234567890", True),
        ("https://x.example/414/9520123456788", True),
        ("https://shop.example/401/about", False),
        ("https://x.example/01/12345678/more", True),
        ("https://x.example/01/1234567", False),
        ("https://blog.example/2024/01/15/post", False),
        (f"https://x.example/a01/{GTIN}", False),
        (f"ftp://x.example/01/{GTIN}", False),
        (f"https://x.example/01/{GTIN}\n", False),
    ],
)
def test_looks_like_digital_link(uri: str, shaped: bool) -> None:
    assert looks_like_digital_link(uri) is shaped


SEGMENT_VALUES = _x(20)
LABELS = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
HOSTS = st.lists(LABELS, min_size=1, max_size=3).map(".".join)
SCHEMES = st.sampled_from(["http", "https"])
GTIN14S = _with_check_digit(14)
QUALIFIERS = st.dictionaries(st.sampled_from(["22", "10", "21"]), SEGMENT_VALUES, max_size=3)
QUERY_AIS = st.fixed_dictionaries({}, optional={
    "17": DATES, "15": DATES, "3103": _n(6, 6), "400": _x(30),
    "7003": st.builds(lambda d, h, m: f"{d}{h:02d}{m:02d}", DATES, st.integers(0, 23),
                      st.integers(0, 59))})


@st.composite
def digital_links(draw: st.DrawFn) -> DigitalLink:
    ais = draw(QUALIFIERS) | draw(QUERY_AIS)
    return DigitalLink(gtin=draw(GTIN14S), ais=ais, extra={},
                       domain=f"{draw(SCHEMES)}://{draw(HOSTS)}")


@ROUND_TRIPS
@given(digital_links())
def test_digital_link_round_trip(link: DigitalLink) -> None:
    uri = link.to_uri()
    assert looks_like_digital_link(uri)
    parsed = parse_digital_link(uri)
    assert parsed == link
    assert parsed.to_uri() == uri


@ROUND_TRIPS
@given(digital_links(), st.lists(LABELS, max_size=3).map(lambda p: "".join(f"/{s}" for s in p)))
def test_digital_link_with_prefix_parses_to_same_item(link: DigitalLink, prefix: str) -> None:
    parsed = parse_digital_link(link.to_uri(link.domain + prefix))
    assert (parsed.gtin, parsed.ais, parsed.domain) == (link.gtin, link.ais, link.domain)


@PROPS
@given(st.text())
def test_parse_digital_link_arbitrary_text_only_raises_gs1error(text: str) -> None:
    try:
        link = parse_digital_link(text)
    except GS1Error:
        return
    assert len(link.gtin) == 14


URI_PIECES = st.sampled_from(["https://", "http://", "id.gs1.org", "/", "01", "gtin", GTIN,
                              "96385074", "10", "21", "22", "lot", "?", "&", "=", "17", "261231",
                              "%", "%2F", "%FF", "#", "@", ":", "[", "]", "..", "ABC", "é", " "])


@PROPS
@given(st.lists(URI_PIECES, max_size=16).map("".join))
def test_parse_digital_link_uri_soup_only_raises_gs1error(text: str) -> None:
    try:
        link = parse_digital_link(text)
    except GS1Error:
        return
    assert len(link.gtin) == 14
    assert parse_digital_link(link.to_uri()).ais == link.ais


# Examples in the style of GS1's Digital Link standard and its reference parser's published
# test cases (gs1-syntax-engine, dl.c): every primary key, qualifier alternatives, stems.
@pytest.mark.parametrize(
    ("uri", "key", "value", "ais"),
    [
        ("https://id.gs1.org/00/006141411234567890", "00", "006141411234567890", {}),
        ("HTTP://a/00/006141411234567890", "00", "006141411234567890", {}),
        ("https://a/more/stem/00/006141411234567890", "00", "006141411234567890", {}),
        ("https://id.gs1.org/01/09520123456788/22/2A/10/ABC123/21/12345?17=180426",
         "01", "09520123456788", {"22": "2A", "10": "ABC123", "21": "12345", "17": "180426"}),
        ("https://id.gs1.org/01/09520123456788/235/TPX-1", "01", "09520123456788",
         {"235": "TPX-1"}),
        ("https://id.gs1.org/01/09520123456788/235/TPX-1?10=L1", "01", "09520123456788",
         {"235": "TPX-1", "10": "L1"}),
        ("https://id.gs1.org/253/9520123456788ABC", "253", "9520123456788ABC", {}),
        ("https://id.gs1.org/255/9520123456788", "255", "9520123456788", {}),
        ("https://id.gs1.org/401/ABC-123", "401", "ABC-123", {}),
        ("https://id.gs1.org/402/95201234567890122", "402", "95201234567890122", {}),
        ("https://id.gs1.org/414/9520123456788/254/EXT1", "414", "9520123456788",
         {"254": "EXT1"}),
        ("https://id.gs1.org/414/9520123456788/7040/1ABC", "414", "9520123456788",
         {"7040": "1ABC"}),
        ("https://id.gs1.org/415/9520123456788/8020/REF9", "415", "9520123456788",
         {"8020": "REF9"}),
        ("https://id.gs1.org/417/9520123456788", "417", "9520123456788", {}),
        ("https://id.gs1.org/8003/09520123456788SER", "8003", "09520123456788SER", {}),
        ("https://id.gs1.org/8004/9520123ASSET", "8004", "9520123ASSET", {}),
        ("https://id.gs1.org/8006/095201234567880102/22/V/10/L", "8006",
         "095201234567880102", {"22": "V", "10": "L"}),
        ("https://id.gs1.org/8010/9520123CP/8011/42", "8010", "9520123CP", {"8011": "42"}),
        ("https://id.gs1.org/8013/MODEL-42", "8013", "MODEL-42", {}),
        ("https://id.gs1.org/8017/952012345678901233/8019/7", "8017", "952012345678901233",
         {"8019": "7"}),
        ("https://id.gs1.org/8018/952012345678901233", "8018", "952012345678901233", {}),
    ],
)
def test_every_primary_key(uri: str, key: str, value: str, ais: dict[str, str]) -> None:
    link = parse_digital_link(uri)
    assert (link.key, link.key_value, link.ais) == (key, value, ais)
    assert link.gtin == (value if key == "01" else None)
    again = parse_digital_link(link.to_uri())
    assert (again.key, again.key_value, again.ais) == (key, value, ais)


def test_the_ai_table_has_every_gs1_ai_family() -> None:
    for ai in ("235", "243", "253", "255", "4300", "4333", "7003", "7040", "7239", "8013",
               "8030", "3955", "3695"):
        assert ai in KNOWN_AIS, ai
    for not_an_ai in ("1", "03", "19", "23", "3170", "4334", "7100", "8014"):
        assert not_an_ai not in KNOWN_AIS, not_an_ai
