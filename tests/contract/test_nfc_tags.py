"""What a tag read means to the device that made it: the token and the product on a tag,
and nothing (never an exception) for anything else a tag may hold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contract.loyalty import issue_token
from contract.ndef_codec import encode_text, encode_uri, encode_uris
from contract.nfc_tags import TagMeaning, tag_says

GS1_URI = "https://id.gs1.org/01/09506000134352"
UID = "03feffe011223344"
TOKEN = issue_token(b"k" * 32, "C0000001", kind="card", now=1_767_225_600, ttl_s=86400,
                    card_uid=UID)


def test_tag_says_finds_the_token_and_the_product() -> None:
    both = encode_uris(f"https://vitrine.example/l/{TOKEN}", GS1_URI)
    assert tag_says(both) == TagMeaning(token=TOKEN, gtin="09506000134352")
    assert tag_says(encode_uri(GS1_URI)) == TagMeaning(gtin="09506000134352")
    # plain text, broken GS1, a blank or unreadable tag: nothing, and no exception
    assert tag_says(encode_text("Oat milk")) == TagMeaning()
    assert tag_says(encode_uri("https://id.gs1.org/01/09506000134353")) == TagMeaning()
    assert tag_says(None) == tag_says(b"") == tag_says(b"\xd1\x01") == TagMeaning()


@given(st.binary(max_size=300))
def test_tag_says_never_raises_on_any_bytes(raw: bytes) -> None:
    meaning = tag_says(raw)
    assert meaning.gtin is None or (len(meaning.gtin) == 14 and meaning.gtin.isdigit())
