"""Classification of scanned and tapped strings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.gs1 import GS, DigitalLink, GS1Error, gtin_check_digit
from contract.loyalty import issue_token
from contract.scan import MAX_SCAN_CHARS, ScanContent, classify

PROPS = settings(max_examples=300, deadline=None)
GTIN = "09506000134352"
TOKEN = issue_token(b"k" * 32, "C0001234", kind="app", now=1_767_225_600, ttl_s=120)


@pytest.mark.parametrize(
    ("text", "gtin"),
    [
        ("09506000134352", GTIN),
        ("4006381333931", "04006381333931"),
        ("96385074", "00000096385074"),
        ("036000291452", "00036000291452"),
        ("]E04006381333931", "04006381333931"),
        ("]E496385074", "00000096385074"),
        ("4006381333931\r\n", "04006381333931"),
    ],
)
def test_barcodes_are_products(text: str, gtin: str) -> None:
    content = classify(text)
    assert (content.kind, content.gtin, content.ais) == ("product", gtin, {})


def test_digital_link_is_a_product() -> None:
    content = classify("]Q1https://brand.example/p/01/09506000134352/10/ABC?17=261231&utm=x")
    assert content == ScanContent(
        kind="product", gtin=GTIN, ais={"10": "ABC", "17": "261231"},
        text="https://brand.example/p/01/09506000134352/10/ABC?17=261231&utm=x",
        symbology="QR Code")


@pytest.mark.parametrize(
    ("text", "ais", "symbology"),
    [
        ("(01)09506000134352(17)261231(10)ABC", {"17": "261231", "10": "ABC"}, None),
        ("]Q3010950600013435217261231" + "10ABC", {"17": "261231", "10": "ABC"}, "GS1 QR Code"),
        ("]C1" + GS + "0109506000134352", {}, "GS1-128"),
        ("]d2010950600013435210L1" + GS + "21S1", {"10": "L1", "21": "S1"}, "GS1 DataMatrix"),
        ("]e00109506000134352", {}, "GS1 DataBar"),
        ("0109506000134352" + "17261231", {"17": "261231"}, None),  # raw, no AIM prefix
        (GS + "0109506000134352", {}, None),
    ],
)
def test_element_strings_are_products(text: str, ais: dict[str, str],
                                       symbology: str | None) -> None:
    content = classify(text)
    assert (content.kind, content.gtin, content.ais, content.symbology) == (
        "product", GTIN, ais, symbology)


def test_gs1_data_without_gtin_is_text_with_ais() -> None:
    content = classify("]C1" + "00106141411234567897")
    assert (content.kind, content.gtin, content.ais) == (
        "text", None, {"00": "106141411234567897"})


@pytest.mark.parametrize(
    "text",
    [TOKEN, f"]Q1{TOKEN}", f"https://app.retailer.example/id/{TOKEN}",
     f"https://app.retailer.example/id?x=1&t={TOKEN}", f"]Q3{TOKEN}\n"],
)
def test_loyalty_tokens(text: str) -> None:
    content = classify(text)
    assert (content.kind, content.token, content.gtin) == ("loyalty", TOKEN, None)


def test_loyalty_token_wins_over_digital_link_shape() -> None:
    content = classify(f"https://id.gs1.org/01/{GTIN}?t={TOKEN}")
    assert content.kind == "loyalty"


@pytest.mark.parametrize(
    "text",
    ["https://www.example.com/", "http://shop.example/blog/2024/01/15/post",
     "HTTPS://shop.example/01/not-a-gtin", "]Q1https://x.example/?q=01"],
)
def test_web_links(text: str) -> None:
    content = classify(text)
    assert (content.kind, content.gtin) == ("url", None)


@pytest.mark.parametrize(
    "text",
    ["hello", "", "]Q1", "mailto:shop@example.com", "https://x.example/a b", "12345",
     "123456789", "(555) 123-4567", "(23)unknown", "0123", "01AB",
     "010950600013435217", "]E3400638133393112", "vt2.abc", "https://"],
)
def test_plain_text(text: str) -> None:
    content = classify(text)
    assert (content.kind, content.gtin, content.token) == ("text", None, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("09506000134353", "bad check digit"),
        ("4006381333932", "bad check digit"),
        ("96385075", "bad check digit"),
        ("]E04006381333932", "bad check digit"),
        ("]E0ABC", "not digits"),
        ("]E0", "not digits"),
        ("]E4123", "bad length"),
        ("https://id.gs1.org/01/09506000134353", "bad check digit"),
        ("https://id.gs1.org/01/09506000134352/21/S/10/L", "in that order"),
        ("https://id.gs1.org/01/09506000134352?17=261399", "bad date"),
        ("https://user@id.gs1.org/01/09506000134352", "bad host"),
        ("]Q3hello", "unknown AI"),
        ("]C1", "empty"),
        ("]d2" + "0109506000134353", "bad check digit"),
        ("(01)09506000134353", "bad check digit"),
        ("(17)261399", "bad date"),
    ],
)
def test_broken_gs1_claims_raise(text: str, reason: str) -> None:
    with pytest.raises(GS1Error, match=reason):
        classify(text)


def test_unknown_aim_prefix_is_stripped_but_not_trusted() -> None:
    content = classify("]X0hello")
    assert (content.kind, content.text, content.symbology) == ("text", "hello", "unknown")
    assert classify("]X00109506000134352").gtin == GTIN  # raw 01... that parses


def test_group_separator_is_not_stripped_as_whitespace() -> None:
    content = classify("]C10109506000134352" + "10LOT" + GS + "21SER" + GS)
    assert content.ais == {"10": "LOT", "21": "SER"}


def test_oversized_input_is_text() -> None:
    text = "https://id.gs1.org/01/09506000134353?x=" + "a" * MAX_SCAN_CHARS
    assert classify(text).kind == "text"


def test_scan_content_is_hashable() -> None:
    content = classify("(01)09506000134352(10)A")
    assert content in {content}


# --------------------------------------------------------------------------- properties


@PROPS
@given(st.text())
def test_arbitrary_text_only_raises_gs1_error(text: str) -> None:
    try:
        content = classify(text)
    except GS1Error:
        return
    assert content.kind in ("product", "loyalty", "url", "text")
    if content.kind == "product":
        assert content.gtin is not None and len(content.gtin) == 14


PIECES = st.sampled_from(
    ["]Q1", "]Q3", "]E0", "]C1", "]d2", "]X9", "https://", "http://", "id.gs1.org", "/", "01",
     "gtin", GTIN, "96385074", "4006381333931", "(01)", "(17)", "(10)", "10", "17", "261231",
     "?", "&", "t=", "=", GS, "vt1.", "AQgw", ".", "%2F", "%FF", " ", "\r\n", "@", "#", "é"])


@PROPS
@given(st.lists(PIECES, max_size=12).map("".join))
def test_scan_soup_only_raises_gs1_error(text: str) -> None:
    try:
        content = classify(text)
    except GS1Error:
        return
    assert (content.kind == "product") == (content.gtin is not None)
    assert (content.kind == "loyalty") == (content.token is not None)


@PROPS
@given(st.sampled_from([7, 11, 12, 13]).flatmap(
    lambda n: st.text("0123456789", min_size=n, max_size=n)))
def test_every_valid_gtin_is_a_product(body: str) -> None:
    gtin = body + str(gtin_check_digit(body))
    assert classify(gtin).gtin == gtin.zfill(14)
    assert classify(f"]E0{gtin}").gtin == gtin.zfill(14)
    link = DigitalLink(gtin=gtin.zfill(14), ais={"10": "L1", "17": "261231"})
    assert classify(link.to_uri()) == ScanContent(
        kind="product", gtin=gtin.zfill(14), ais={"10": "L1", "17": "261231"},
        text=link.to_uri())


@PROPS
@given(st.sampled_from(["", "]Q1", "]Q3", "]d2"]),
       st.sampled_from(["{}", "https://app.example/c/{}", "https://app.example/c?t={}"]),
       st.binary(min_size=12, max_size=12))
def test_every_token_is_loyalty(prefix: str, template: str, nonce: bytes) -> None:
    token = issue_token(b"k" * 32, "C1", kind="app", now=0, ttl_s=120, nonce=nonce)
    content = classify(prefix + template.format(token))
    assert (content.kind, content.token) == ("loyalty", token)
