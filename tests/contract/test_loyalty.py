"""Signed loyalty tokens: issuing, verification, tampering, card binding and replay."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.loyalty import (
    MAX_TOKEN_CHARS,
    NonceCache,
    TokenClaims,
    TokenError,
    TokenExpired,
    TokenForged,
    TokenMalformed,
    TokenNotYetValid,
    TokenReplayed,
    TokenWrongCard,
    issue_token,
    looks_like_token,
    verify_token,
)

PROPS = settings(max_examples=300, deadline=None)
KEY = bytes(range(32))
KEY2 = b"second-retailer-key-for-rotation"
KEYS = {"k1": KEY}
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
UID = "04A1B2C3D4E580"
NONCE = b"\x01" * 12
YEAR = 365 * 24 * 3600


def app_token(**overrides: Any) -> str:
    args: dict[str, Any] = {"kind": "app", "now": NOW, "ttl_s": 120, "nonce": NONCE}
    return issue_token(KEY, "C0001234", **(args | overrides))


def card_token(**overrides: Any) -> str:
    args: dict[str, Any] = {"kind": "card", "now": NOW, "ttl_s": 3 * YEAR, "card_uid": UID}
    return issue_token(KEY, "C0001234", **(args | overrides))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(claims_json: str, key: bytes = KEY) -> str:
    """A correctly signed token around arbitrary claims, as a buggy issuer would produce."""
    signing_input = "vt1." + b64(claims_json.encode())
    return f"{signing_input}.{b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


# --------------------------------------------------------------------------- format


def test_app_token_round_trip() -> None:
    claims = verify_token(KEYS, app_token(), now=NOW + 60)
    assert claims == TokenClaims(key_id="k1", customer_id="C0001234", kind="app",
                                 issued_at=int(NOW), expires_at=int(NOW) + 120,
                                 nonce=b64(NONCE), card_uid=None)


def test_card_token_round_trip() -> None:
    claims = verify_token(KEYS, card_token(), now=NOW + YEAR, card_uid=UID)
    assert (claims.kind, claims.card_uid, claims.customer_id) == ("card", UID.lower(), "C0001234")


def test_token_format_is_compact_and_carries_no_personal_data() -> None:
    token = card_token(nonce=NONCE)
    prefix, body, signature = token.split(".")
    assert prefix == "vt1"
    assert "=" not in token
    assert len(base64.urlsafe_b64decode(signature + "==")) == 32
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert claims == {"k": "k1", "c": "C0001234", "t": "card", "i": int(NOW),
                      "e": int(NOW) + 3 * YEAR, "n": b64(NONCE), "u": UID.lower()}
    assert len(token) <= 213  # fits a version 10 QR code at error correction level M
    assert len(app_token()) < 180


def test_known_vector() -> None:
    """Pins the wire format so devices in other languages can test against it."""
    token = app_token()
    body = b64(b'{"k":"k1","c":"C0001234","t":"app","i":1767225600,"e":1767225720,'
               b'"n":"AQEBAQEBAQEBAQEB"}')
    mac = hmac.new(KEY, f"vt1.{body}".encode(), hashlib.sha256).digest()
    assert token == f"vt1.{body}.{b64(mac)}"


def test_nonces_are_random_by_default() -> None:
    tokens = {issue_token(KEY, "C1", kind="app", now=NOW, ttl_s=120) for _ in range(20)}
    assert len(tokens) == 20
    nonces = {verify_token(KEYS, t, now=NOW).nonce for t in tokens}
    assert len(nonces) == 20


def test_looks_like_token() -> None:
    assert looks_like_token(app_token())
    assert looks_like_token("vt1.")
    assert not looks_like_token("vt2.abc")
    assert not looks_like_token(" vt1.abc")
    assert not looks_like_token("https://x.example/vt1.abc")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "card"},  # card token without card_uid
        {"kind": "card", "card_uid": "04:A1:B2:C3"},
        {"kind": "card", "card_uid": "04A1B2"},
        {"kind": "app", "card_uid": UID},
        {"kind": "coupon"},
        {"kind": "app", "ttl_s": 0},
        {"kind": "app", "ttl_s": 1.5},
        {"kind": "app", "ttl_s": True},
        {"kind": "app", "now": -1},
        {"kind": "app", "now": float("nan")},
        {"kind": "app", "now": 253_402_300_799},  # expiry after year 9999
        {"kind": "app", "key_id": "key id"},
        {"kind": "app", "key_id": ""},
        {"kind": "app", "nonce": b"short"},
        {"kind": "app", "customer_id": "jane.doe@example.com"},
        {"kind": "app", "customer_id": "Jane Doe"},
        {"kind": "app", "customer_id": ""},
        {"kind": "app", "key": b"short key"},
    ],
)
def test_issue_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"key": KEY, "customer_id": "C0001234", "now": NOW, "ttl_s": 120}
    with pytest.raises(ValueError):
        issue_token(**(args | kwargs))


# --------------------------------------------------------------------------- verification


def test_expiry_and_leeway() -> None:
    token = app_token()  # expires at NOW + 120
    assert verify_token(KEYS, token, now=NOW + 149.9)  # within the 30 s leeway
    with pytest.raises(TokenExpired) as info:
        verify_token(KEYS, token, now=NOW + 150)
    assert info.value.reason == "expired"
    with pytest.raises(TokenExpired):
        verify_token(KEYS, token, now=NOW + 121, leeway_s=0)


def test_not_yet_valid() -> None:
    token = app_token(now=NOW + 100)
    assert verify_token(KEYS, token, now=NOW + 71)  # clock skew within leeway
    with pytest.raises(TokenNotYetValid) as info:
        verify_token(KEYS, token, now=NOW + 69)
    assert info.value.reason == "not_yet_valid"


def test_unknown_key_id() -> None:
    token = issue_token(KEY2, "C1", kind="app", now=NOW, ttl_s=120, key_id="k2")
    with pytest.raises(TokenForged) as info:
        verify_token(KEYS, token, now=NOW)
    assert info.value.reason == "unknown_key"


def test_key_rotation() -> None:
    keys = {"k1": KEY, "k2": KEY2}
    old = app_token()
    new = issue_token(KEY2, "C1", kind="app", now=NOW, ttl_s=120, key_id="k2")
    assert verify_token(keys, old, now=NOW).key_id == "k1"
    assert verify_token(keys, new, now=NOW).key_id == "k2"


def test_wrong_key_is_a_bad_signature() -> None:
    forged = issue_token(KEY2, "C0001234", kind="app", now=NOW, ttl_s=120, key_id="k1")
    with pytest.raises(TokenForged) as info:
        verify_token(KEYS, forged, now=NOW)
    assert info.value.reason == "bad_signature"


def test_edited_claims_are_a_bad_signature() -> None:
    _, body, signature = app_token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["c"] = "C9999999"
    edited = f"vt1.{b64(json.dumps(claims, separators=(',', ':')).encode())}.{signature}"
    with pytest.raises(TokenForged, match="signature"):
        verify_token(KEYS, edited, now=NOW)


def test_card_binding() -> None:
    token = card_token()
    assert verify_token(KEYS, token, now=NOW, card_uid=UID.lower()).card_uid == UID.lower()
    with pytest.raises(TokenWrongCard) as info:
        verify_token(KEYS, token, now=NOW, card_uid="04A1B2C3D4E581")
    assert info.value.reason == "wrong_card"
    with pytest.raises(TokenWrongCard, match="without its tag"):
        verify_token(KEYS, token, now=NOW)  # the card token shown as a QR code


def test_cloned_card_is_reported_even_when_expired() -> None:
    token = card_token(ttl_s=60)
    with pytest.raises(TokenWrongCard):
        verify_token(KEYS, token, now=NOW + YEAR, card_uid="0000000000000000")
    with pytest.raises(TokenExpired):
        verify_token(KEYS, token, now=NOW + YEAR, card_uid=UID)


def test_app_token_is_accepted_from_a_tag() -> None:
    assert verify_token(KEYS, app_token(), now=NOW, card_uid=UID).kind == "app"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "vt1.",
        "vt1..",
        "vt1.abc",
        "vt2.abc.def",
        "VT1.abc.def",
        "vt1.abc.def.ghi",
        "vt1.a=bc.def",
        "vt1.a.b",  # length 1 mod 4 is never valid base64
        "vt1.e30.AAAA",  # signature of the wrong length
        "vt1.e30." + "A" * 43 + "\n",
        "vt1.e30." + "A" * MAX_TOKEN_CHARS,
        "vt1.\u0661\u0662.AAAA",
        "vt1.//8.AAAA",  # standard base64 alphabet, not base64url
    ],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(TokenMalformed) as info:
        verify_token(KEYS, token, now=NOW)
    assert info.value.reason == "malformed"


def test_non_canonical_signature_encoding_is_rejected() -> None:
    """The last base64 character carries 2 unused bits: a lenient decoder would accept 4
    spellings of the same signature, i.e. a tampered token."""
    token = app_token()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    for sibling in alphabet[last & ~3:(last & ~3) + 4]:
        if sibling == token[-1]:
            continue
        with pytest.raises(TokenMalformed, match="canonical"):
            verify_token(KEYS, token[:-1] + sibling, now=NOW)


GOOD_CLAIMS = {"k": "k1", "c": "C1", "t": "app", "i": int(NOW), "e": int(NOW) + 60,
               "n": b64(NONCE)}


@pytest.mark.parametrize(
    "claims_json",
    [
        "[]",
        '"k1"',
        "not json",
        '{"k":"k1","k":"k1","c":"C1","t":"app","i":1,"e":2,"n":"AQEBAQEBAQEBAQEB"}',
        json.dumps(GOOD_CLAIMS | {"i": float(NOW)}),
        json.dumps(GOOD_CLAIMS | {"e": True}),
        json.dumps(GOOD_CLAIMS | {"e": -5}),
        json.dumps(GOOD_CLAIMS | {"e": 10**30}),
        json.dumps(GOOD_CLAIMS | {"e": int(NOW) - 1}),  # expires before issued
        json.dumps(GOOD_CLAIMS).replace(str(int(NOW) + 60), "NaN"),
        json.dumps(GOOD_CLAIMS | {"c": "jane@example.com"}),
        json.dumps(GOOD_CLAIMS | {"c": 1234}),
        json.dumps(GOOD_CLAIMS | {"t": "coupon"}),
        json.dumps(GOOD_CLAIMS | {"n": "short"}),
        json.dumps(GOOD_CLAIMS | {"email": "jane@example.com"}),
        json.dumps(GOOD_CLAIMS | {"u": UID}),  # app tokens are not bound
        json.dumps(GOOD_CLAIMS | {"t": "card"}),  # card token without u
        json.dumps(GOOD_CLAIMS | {"t": "card", "u": "not-hex"}),
        json.dumps({k: v for k, v in GOOD_CLAIMS.items() if k != "n"}),
        json.dumps(GOOD_CLAIMS | {"g": "09506000134353"}),  # scanned product: bad check digit
        json.dumps(GOOD_CLAIMS | {"g": "9506000134352"}),  # not 14 digits
        json.dumps(GOOD_CLAIMS | {"g": 9506000134352}),
        json.dumps(GOOD_CLAIMS | {"t": "card", "u": UID, "g": "09506000134352"}),  # cards: no g
        "[" * 500 + "]" * 500,
    ],
)
def test_signed_but_invalid_claims_are_malformed(claims_json: str) -> None:
    with pytest.raises(TokenMalformed):
        verify_token(KEYS, signed(claims_json), now=NOW)


def test_signed_valid_claims_built_by_hand_are_accepted() -> None:
    """The counterpart of the test above: the helper really does produce valid tokens."""
    claims = verify_token(KEYS, signed(json.dumps(GOOD_CLAIMS)), now=NOW)
    assert claims.customer_id == "C1"


def test_app_token_carries_the_product_the_customer_scanned() -> None:
    """``g``: the read itself says who scanned what, under the retailer's signature."""
    token = app_token(gtin="09506000134352")
    claims = verify_token(KEYS, token, now=NOW)
    assert (claims.customer_id, claims.kind, claims.gtin) == ("C0001234", "app", "09506000134352")
    assert verify_token(KEYS, app_token(), now=NOW).gtin is None
    edited = signed(json.dumps(GOOD_CLAIMS | {"g": "09506000134352"}), key=KEY2)
    with pytest.raises(TokenForged):  # swapping the product needs the retailer's key
        verify_token(KEYS, edited, now=NOW)


@pytest.mark.parametrize("kwargs", [{"gtin": "09506000134353"}, {"gtin": "123"},
                                    {"kind": "card", "card_uid": UID, "gtin": "09506000134352"}])
def test_issue_refuses_a_bad_scanned_product(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        app_token(**kwargs)


def test_key_id_of_wrong_type_is_unknown_key() -> None:
    token = signed(json.dumps(GOOD_CLAIMS | {"k": ["k1"]}))
    with pytest.raises(TokenForged) as info:
        verify_token(KEYS, token, now=NOW)
    assert info.value.reason == "unknown_key"


def test_reason_codes() -> None:
    assert TokenError("x").reason == "invalid"
    assert [cls("x").reason for cls in (TokenMalformed, TokenForged, TokenExpired,
                                         TokenNotYetValid, TokenWrongCard, TokenReplayed)] == [
        "malformed", "bad_signature", "expired", "not_yet_valid", "wrong_card", "replayed"]
    assert TokenForged("x", reason="unknown_key").reason == "unknown_key"
    assert issubclass(TokenError, ValueError)


# --------------------------------------------------------------------------- properties

CUSTOMER_IDS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
                       min_size=1, max_size=64)
UIDS = st.binary(min_size=4, max_size=10).map(bytes.hex)


@PROPS
@given(customer_id=CUSTOMER_IDS, now=st.integers(0, 4_000_000_000), ttl=st.integers(1, 10 * YEAR),
       uid=st.none() | UIDS, nonce=st.binary(min_size=12, max_size=12))
def test_issue_verify_round_trip(customer_id: str, now: int, ttl: int, uid: str | None,
                                 nonce: bytes) -> None:
    kind = "app" if uid is None else "card"
    token = issue_token(KEY, customer_id, kind=kind, now=now, ttl_s=ttl, card_uid=uid,
                        nonce=nonce)
    assert len(token) <= MAX_TOKEN_CHARS
    claims = verify_token(KEYS, token, now=now + ttl / 2, card_uid=uid and uid.upper())
    assert (claims.customer_id, claims.kind, claims.issued_at, claims.expires_at) == (
        customer_id, kind, now, now + ttl)
    assert claims.card_uid == uid


CARD_TOKEN = card_token(nonce=NONCE)


@PROPS
@given(st.data())
def test_any_single_character_tampering_is_rejected(data: st.DataObject) -> None:
    token = data.draw(st.sampled_from([CARD_TOKEN, app_token()]))
    pos = data.draw(st.integers(0, len(token) - 1))
    edit = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    char = data.draw(st.characters() | st.sampled_from("AQgw-_.=0"))
    if edit == "replace":
        if char == token[pos]:
            return
        tampered = token[:pos] + char + token[pos + 1:]
    elif edit == "insert":
        tampered = token[:pos] + char + token[pos:]
    else:
        tampered = token[:pos] + token[pos + 1:]
    with pytest.raises(TokenError):
        verify_token(KEYS, tampered, now=NOW, card_uid=UID)


@PROPS
@given(st.text() | st.text().map(lambda t: "vt1." + t)
       | st.lists(st.text("AQgw-_09azAZ=", max_size=60), min_size=1, max_size=4).map(
           lambda parts: "vt1." + ".".join(parts)))
def test_arbitrary_text_only_raises_token_error(text: str) -> None:
    with pytest.raises(TokenError):
        verify_token(KEYS, text, now=NOW, card_uid=UID)


CLAIM_VALUES = (st.none() | st.booleans() | st.integers(-2, 2**64) | st.floats()
                | st.text(max_size=20)
                | st.sampled_from(["k1", "card", "app", "AQEBAQEBAQEBAQEB", UID]) | st.just([]))


@PROPS
@given(st.dictionaries(st.sampled_from("kctienux") | st.text(max_size=3), CLAIM_VALUES,
                       max_size=9))
def test_any_signed_claims_only_raise_token_error(claims: dict[str, Any]) -> None:
    try:
        result = verify_token(KEYS, signed(json.dumps(claims)), now=NOW, card_uid=UID)
    except TokenError:
        return
    assert isinstance(result, TokenClaims) and claims.get("k") == "k1"


# --------------------------------------------------------------------------- replay


def test_nonce_cache_rejects_replay_until_expiry() -> None:
    cache = NonceCache()
    cache.check_and_add("n1", expires_at=100, now=0)
    with pytest.raises(TokenReplayed) as info:
        cache.check_and_add("n1", expires_at=100, now=99)
    assert info.value.reason == "replayed"
    cache.check_and_add("n1", expires_at=300, now=100)  # expired entry was evicted
    assert "n1" in cache and len(cache) == 1


def test_nonce_cache_evicts_expired_entries() -> None:
    cache = NonceCache()
    for i in range(10):
        cache.check_and_add(f"n{i}", expires_at=10 + i, now=0)
    cache.check_and_add("late", expires_at=100, now=15)
    assert len(cache) == 5  # n6..n9 and late
    assert "n5" not in cache and "n6" in cache


def test_nonce_cache_does_not_store_already_expired_tokens() -> None:
    cache = NonceCache()
    cache.check_and_add("old", expires_at=5, now=10)
    assert len(cache) == 0


def test_nonce_cache_is_bounded_and_drops_soonest_expiry_first() -> None:
    cache = NonceCache(max_entries=3)
    cache.check_and_add("a", expires_at=50, now=0)
    cache.check_and_add("b", expires_at=20, now=0)
    cache.check_and_add("c", expires_at=90, now=0)
    cache.check_and_add("d", expires_at=60, now=0)
    assert len(cache) == 3
    assert "b" not in cache
    for nonce in ("a", "c", "d"):
        with pytest.raises(TokenReplayed):
            cache.check_and_add(nonce, expires_at=99, now=1)
    with pytest.raises(ValueError):
        NonceCache(max_entries=0)


def test_replay_rule_app_tokens_once_card_tokens_always() -> None:
    cache = NonceCache()
    app = verify_token(KEYS, app_token(), now=NOW)
    cache.check_claims(app, now=NOW)
    with pytest.raises(TokenReplayed):
        cache.check_claims(verify_token(KEYS, app_token(), now=NOW + 100), now=NOW + 100)
    # Still remembered within the verification leeway after expiry (NOW + 120 + 30).
    with pytest.raises(TokenReplayed):
        cache.check_and_add(app.nonce, expires_at=NOW + 500, now=NOW + 149)
    card = verify_token(KEYS, card_token(), now=NOW, card_uid=UID)
    for tap in range(5):
        cache.check_claims(card, now=NOW + tap)
    assert card.nonce not in cache


@PROPS
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(1, 50)), max_size=40))
def test_nonce_cache_model(events: list[tuple[str, int]]) -> None:
    """Against a dict model: replay raised iff the nonce is stored and unexpired."""
    cache = NonceCache(max_entries=100)
    model: dict[str, int] = {}
    for now, (nonce, ttl) in enumerate(events):
        live = nonce in model and model[nonce] > now
        if live:
            with pytest.raises(TokenReplayed):
                cache.check_and_add(nonce, expires_at=now + ttl, now=now)
        else:
            cache.check_and_add(nonce, expires_at=now + ttl, now=now)
            model[nonce] = now + ttl
        assert len(cache) == sum(1 for exp in model.values() if exp > now)


@PROPS
@given(g=st.text(max_size=20) | st.integers() | st.none() | st.from_regex(r"[0-9]{14}",
                                                                        fullmatch=True))
def test_any_scanned_product_claim_is_a_valid_gtin_or_malformed(g: Any) -> None:
    token = signed(json.dumps(GOOD_CLAIMS | {"g": g}))
    try:
        claims = verify_token(KEYS, token, now=NOW)
    except TokenMalformed:
        return
    assert isinstance(claims.gtin, str) and len(claims.gtin) == 14 and claims.gtin.isdigit()
    assert issue_token(KEY, "C1", kind="app", now=NOW, ttl_s=60, gtin=claims.gtin)
