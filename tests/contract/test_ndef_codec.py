"""NDEF decoding of untrusted tag contents, and the encoders used by simulators."""

from __future__ import annotations

import ndef
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.ndef_codec import (
    MAX_NDEF_BYTES,
    NdefError,
    NdefItem,
    candidate_strings,
    decode_ndef,
    encode_smartposter,
    encode_text,
    encode_uri,
    encode_uris,
)

PROPS = settings(max_examples=300, deadline=None)
ROUND_TRIPS = settings(max_examples=150, deadline=None)
DL = "https://id.gs1.org/01/09506000134352"


def _message(*records: ndef.Record) -> bytes:
    return b"".join(ndef.message_encoder(list(records)))


# --------------------------------------------------------------------------- decoding


def test_decode_uri_record() -> None:
    raw = encode_uri(DL)
    assert raw[:1] == b"\xd1"  # MB|ME|SR, well-known type
    assert decode_ndef(raw) == [NdefItem("uri", DL, record_type="urn:nfc:wkt:U")]


@pytest.mark.parametrize("uri", ["https://www.example.com/p", "tel:+4930123", "urn:epc:id:x",
                                 "custom-scheme:abc", "https://ex.example/ü?q=ä"])
def test_uri_prefix_abbreviations_are_expanded(uri: str) -> None:
    assert decode_ndef(encode_uri(uri))[0].value == uri


def test_several_uris_in_one_message_keep_their_order() -> None:
    token_link = "https://loyalty.vitrine.example/t/vt1.abc.def"
    items = decode_ndef(encode_uris(DL, token_link))
    assert candidate_strings(items) == [DL, token_link]
    with pytest.raises(NdefError):
        encode_uris()
    with pytest.raises(NdefError):
        encode_uris(DL, "")


def test_decode_known_bytes() -> None:
    # NFC Forum URI RTD example: prefix code 0x04 = "https://", then "id.gs1.org".
    raw = bytes.fromhex("d1010b5504") + b"id.gs1.org"
    assert decode_ndef(raw) == [NdefItem("uri", "https://id.gs1.org", record_type="urn:nfc:wkt:U")]


def test_decode_text_record() -> None:
    items = decode_ndef(encode_text("Hallo Welt", "de-DE"))
    assert items == [NdefItem("text", "Hallo Welt", language="de-DE",
                              record_type="urn:nfc:wkt:T")]


def test_decode_utf16_text_record() -> None:
    raw = _message(ndef.TextRecord("Grüße", "de", "UTF-16"))
    assert decode_ndef(raw)[0].value == "Grüße"


def test_decode_smartposter() -> None:
    items = decode_ndef(encode_smartposter(DL, "Organic tea"))
    assert items == [NdefItem("smartposter", DL, title="Organic tea", language="en",
                              record_type="urn:nfc:wkt:Sp")]


def test_smartposter_prefers_english_title_then_first() -> None:
    english = ndef.SmartposterRecord(DL, {"de": "Tee", "en": "Tea", "fr": "Thé"})
    assert decode_ndef(_message(english))[0].title == "Tea"
    other = ndef.SmartposterRecord(DL, {"de": "Tee", "fr": "Thé"})
    item = decode_ndef(_message(other))[0]
    assert (item.title, item.language) == ("Tee", "de")


def test_smartposter_without_title() -> None:
    item = decode_ndef(encode_smartposter(DL))[0]
    assert (item.kind, item.value, item.title, item.language) == ("smartposter", DL, None, None)


def test_other_records_are_opaque() -> None:
    raw = _message(
        ndef.TextRecord("vt1.a.b"),
        ndef.Record("urn:nfc:ext:android.com:pkg", None, b"com.retailer.app"),
        ndef.Record("application/vnd.bluetooth.ep.oob", "0", b"\x00" * 8),
        ndef.UriRecord(DL),
    )
    items = decode_ndef(raw)
    assert [i.kind for i in items] == ["text", "other", "other", "uri"]
    assert items[1] == NdefItem("other", "urn:nfc:ext:android.com:pkg",
                                record_type="urn:nfc:ext:android.com:pkg")
    assert items[2].value == "application/vnd.bluetooth.ep.oob"
    assert candidate_strings(items) == ["vt1.a.b", DL]


def test_records_we_do_not_use_are_not_decoded() -> None:
    """ndeflib rejects this malformed Handover Select; we never run its decoder, so a phone's
    broken handover record does not make the URI next to it unreadable."""
    handover = ndef.Record("urn:nfc:wkt:Hs", None, b"\x12\xff\xff")
    raw = _message(handover, ndef.UriRecord(DL))
    with pytest.raises(ndef.DecodeError):
        list(ndef.message_decoder(raw))
    assert decode_ndef(raw) == [
        NdefItem("other", "urn:nfc:wkt:Hs", record_type="urn:nfc:wkt:Hs"),
        NdefItem("uri", DL, record_type="urn:nfc:wkt:U"),
    ]


def test_candidate_strings_keeps_order_and_skips_other() -> None:
    items = [
        NdefItem("other", "urn:nfc:wkt:Hs"),
        NdefItem("smartposter", "https://a.example", title="A"),
        NdefItem("text", "hello", language="en"),
        NdefItem("uri", "https://b.example"),
    ]
    assert candidate_strings(items) == ["https://a.example", "hello", "https://b.example"]
    assert candidate_strings([]) == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (bytes.fromhex("d00000"), "empty"),  # a blank formatted tag: one empty record
        (bytes.fromhex("d1010b5504") + b"id.gs1", "malformed"),  # truncated payload
        (bytes.fromhex("51010155") + b"\x04", "malformed"),  # MB flag missing
        (bytes.fromhex("91010255") + b"\x04a", "malformed"),  # ME flag never set
        (bytes.fromhex("d1010255") + b"\xff" + b"a", "malformed"),  # undefined URI prefix code
        (bytes.fromhex("d1010355") + b"\x04\x01a", "malformed"),  # control character in URI
        (bytes.fromhex("d1010554") + b"\x02\xc3\xa9hi", "malformed"),  # non-ASCII language
        (bytes.fromhex("d1010554") + b"\x02enh\xff", "malformed"),  # invalid UTF-8 text
        (bytes.fromhex("d1010154") + b"\x05", "malformed"),  # language longer than payload
        (bytes.fromhex("d1010155") + b"", "malformed"),  # short record, payload missing
        (bytes.fromhex("d101ff") + b"\xe9", "malformed"),  # non-ASCII record type
        (bytes.fromhex("d7000000"), "malformed"),  # TNF 7 is reserved
        (bytes.fromhex("d1020853") + b"p" + _message(ndef.TextRecord("x")), "malformed"),
    ],
)
def test_decode_rejects(raw: bytes, reason: str) -> None:
    with pytest.raises(NdefError, match=reason):
        decode_ndef(raw)


def test_bytes_after_the_last_record_are_ignored() -> None:
    """Readers may forward whole memory pages: zero padding or the TLV terminator 0xFE."""
    assert decode_ndef(encode_uri(DL) + b"\xfe\x00\x00")[0].value == DL


def test_decode_rejects_oversized_message() -> None:
    raw = encode_text("x" * 200)
    assert decode_ndef(raw)  # fine at normal size
    big = _message(ndef.TextRecord("x" * MAX_NDEF_BYTES))
    with pytest.raises(NdefError, match="too large"):
        decode_ndef(big)


# --------------------------------------------------------------------------- encoders


@pytest.mark.parametrize("uri", ["", "https://a.example/\x00", "https://a\nb", "\ud800"])
def test_encode_uri_rejects(uri: str) -> None:
    with pytest.raises(NdefError):
        encode_uri(uri)


@pytest.mark.parametrize(("text", "language"),
                         [("x", ""), ("x", "é"), ("x", "a" * 64), ("\udfff", "en")])
def test_encode_text_rejects(text: str, language: str) -> None:
    with pytest.raises(NdefError):
        encode_text(text, language)


def test_encode_rejects_what_the_decoder_would_refuse() -> None:
    with pytest.raises(NdefError, match="too large"):
        encode_text("x" * MAX_NDEF_BYTES)
    with pytest.raises(NdefError):
        encode_smartposter("https://a.example/\x07", "t")
    with pytest.raises(NdefError):
        encode_smartposter(DL, "\ud800")


URIS = st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cs",)), min_size=1,
               max_size=300)
TEXTS = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
LANGUAGES = st.text(st.characters(min_codepoint=0, max_codepoint=127), min_size=1, max_size=63)


@ROUND_TRIPS
@given(URIS)
def test_uri_round_trip(uri: str) -> None:
    assert decode_ndef(encode_uri(uri)) == [NdefItem("uri", uri, record_type="urn:nfc:wkt:U")]


@ROUND_TRIPS
@given(TEXTS, LANGUAGES)
def test_text_round_trip(text: str, language: str) -> None:
    assert decode_ndef(encode_text(text, language)) == [
        NdefItem("text", text, language=language, record_type="urn:nfc:wkt:T")]


@ROUND_TRIPS
@given(URIS, st.none() | TEXTS)
def test_smartposter_round_trip(uri: str, title: str | None) -> None:
    (item,) = decode_ndef(encode_smartposter(uri, title))
    assert (item.kind, item.value, item.title) == ("smartposter", uri, title)
    assert candidate_strings([item]) == [uri]


# --------------------------------------------------------------------------- robustness


def _decode_or_ndef_error(raw: bytes) -> None:
    try:
        items = decode_ndef(raw)
    except NdefError:
        return
    assert items and all(isinstance(i, NdefItem) for i in items)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_ndef_error(raw: bytes) -> None:
    _decode_or_ndef_error(raw)


SEEDS = [
    encode_uri(DL),
    encode_text("vt1.abc.def", "en"),
    encode_smartposter(DL, "Tea"),
    _message(ndef.SmartposterRecord(DL, {"de": "Tee", "en": "Tea"}, action="exec",
                                    resource_size=10, resource_type="text/html")),
    _message(ndef.UriRecord("http://a"), ndef.TextRecord("x", "de", "UTF-16"),
             ndef.Record("urn:nfc:ext:android.com:pkg", None, b"com.x")),
]


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """Valid messages with a few bytes flipped, inserted or deleted: reaches deep decoder paths
    (record payloads, Smart Poster sub-records) that random bytes almost never get to."""
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "insert", "delete"]))
        pos = draw(st.integers(0, len(raw)))
        if op == "insert":
            raw.insert(pos, draw(st.integers(0, 255)))
        elif raw and pos < len(raw):
            if op == "set":
                raw[pos] = draw(st.integers(0, 255))
            else:
                del raw[pos]
    return bytes(raw)


@settings(max_examples=500, deadline=None)
@given(mutated_messages())
def test_mutated_messages_only_raise_ndef_error(raw: bytes) -> None:
    _decode_or_ndef_error(raw)


def test_exhaustive_single_byte_corruption_of_a_smartposter() -> None:
    """Every value at every position of a Smart Poster: deterministic, and catches what sampling
    could miss (this found ValueError and UnicodeDecodeError escaping ndeflib)."""
    seed = SEEDS[2]
    for pos in range(len(seed)):
        for value in range(256):
            _decode_or_ndef_error(seed[:pos] + bytes([value]) + seed[pos + 1:])
