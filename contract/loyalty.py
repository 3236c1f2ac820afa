"""Signed loyalty tokens: how a customer identifies in store without carrying personal data.

A token sits on the customer's NFC loyalty card or is shown as a QR code by the retailer's app:

    vt1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "vt1." + claims part))>

Claim keys are one letter so an app token fits a small, quickly scanned QR code:
``k`` key id (rotation), ``c`` opaque loyalty customer id, ``t`` "card" or "app",
``i``/``e`` issued-at/expiry (UNIX seconds), ``n`` 12 random bytes, and for card tokens
``u``, the UID of the tag the token was written to, so a token copied onto another tag is
detected. An app token may also carry ``g``, the GTIN-14 of a product the customer scanned
with their own app: the read then says, under the retailer's signature, who scanned what,
the evidence that lets a read at a shared shelf device be credited to a person
(docs/protocol.md section 9, "Who a read is credited to"). Tokens are readable by anyone
who scans them, hence the customer id only: the mapping to a person stays in the loyalty
system.

Replay rule: app tokens are single-use (a screenshot of someone's QR must not work twice);
card tokens are multi-use and protected by the tag UID binding instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from .gs1 import gtin_check_digit

__all__ = [
    "MAX_TOKEN_CHARS",
    "NonceCache",
    "TokenClaims",
    "TokenError",
    "TokenExpired",
    "TokenForged",
    "TokenMalformed",
    "TokenNotYetValid",
    "TokenReplayed",
    "TokenWrongCard",
    "issue_token",
    "looks_like_token",
    "verify_token",
]

PREFIX = "vt1."
#: Upper bound on an incoming token. Real tokens are ~200 characters; the bound keeps the
#: pre-authentication work (base64 and a small JSON parse to find the key id) trivially cheap.
MAX_TOKEN_CHARS = 1024
NONCE_BYTES = 12
_SIG_BYTES = 32
#: 9999-12-31T23:59:59Z. Times beyond it are issuer bugs (and would overflow float maths).
_MAX_TIME = 253_402_300_799

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
# Opaque ids only: no "@", spaces or dots, so an e-mail address or a name with spaces cannot
# be used as a customer id by mistake.
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UID = re.compile(r"[0-9a-fA-F]{8,20}")  # 4, 7 or 10 byte tag UIDs, as in the nfc schema
_NONCE = re.compile(r"[A-Za-z0-9_-]{16}")  # 12 bytes, base64url
_KINDS = ("card", "app")
_GTIN = re.compile(r"[0-9]{14}")


class TokenError(ValueError):
    """A token that must not be accepted; ``reason`` is a short machine-readable code.

    The edge publishes ``reason`` in security events, so it must never contain token data.
    """

    reason: str = "invalid"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class TokenMalformed(TokenError):
    """Not a vt1 token, or its signed claims are not what an issuer produces."""

    reason = "malformed"


class TokenForged(TokenError):
    """Bad signature (``bad_signature``) or a key id we do not hold (``unknown_key``)."""

    reason = "bad_signature"


class TokenExpired(TokenError):
    reason = "expired"


class TokenNotYetValid(TokenError):
    """Issued further in the future than the clock leeway: a skewed or forged issuer."""

    reason = "not_yet_valid"


class TokenWrongCard(TokenError):
    """A card token read from another tag (a cloned card) or not from a tag at all."""

    reason = "wrong_card"


class TokenReplayed(TokenError):
    reason = "replayed"


@dataclass(frozen=True)
class TokenClaims:
    """The verified content of a token."""

    key_id: str
    customer_id: str
    kind: Literal["card", "app"]
    issued_at: int
    expires_at: int
    nonce: str
    card_uid: str | None = None
    #: App tokens only: the product (GTIN-14) the customer scanned with their app.
    gtin: str | None = None


def looks_like_token(text: str) -> bool:
    """Cheap shape test used to route scans; says nothing about validity."""
    return text.startswith(PREFIX)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Strict, canonical base64url: one valid spelling per byte string.

    Canonicity matters: the last character of a base64 string can carry unused bits, and a
    lenient decoder would accept a tampered token whose signature decodes to the same bytes.
    """
    if _B64URL.fullmatch(text) is None or len(text) % 4 == 1:
        raise TokenMalformed(f"{what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise TokenMalformed(f"{what} is not base64url") from None
    if _b64encode(data) != text:
        raise TokenMalformed(f"{what} is not canonical base64url")
    return data


def _sign(key: bytes, signing_input: str) -> bytes:
    return hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()


def issue_token(
    key: bytes,
    customer_id: str,
    *,
    kind: Literal["card", "app"],
    now: float,
    ttl_s: int,
    key_id: str = "k1",
    card_uid: str | None = None,
    nonce: bytes | None = None,
    gtin: str | None = None,
) -> str:
    """Issue a token for ``customer_id``, valid from ``now`` for ``ttl_s`` seconds.

    App tokens should live about two minutes (the app refreshes its QR code); card tokens
    years. A card token must name the UID of the tag it will be written to. Invalid
    arguments raise ``ValueError``: they are issuer bugs, not untrusted input.
    """
    if len(key) < 16:
        raise ValueError("HMAC key must be at least 16 bytes")
    if _CUSTOMER_ID.fullmatch(customer_id) is None:
        raise ValueError("customer_id must be 1-64 characters of [A-Za-z0-9_-]")
    if _KEY_ID.fullmatch(key_id) is None:
        raise ValueError("key_id must be 1-16 characters of [A-Za-z0-9_-]")
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'card' or 'app', not {kind!r}")
    if kind == "card" and (card_uid is None or _UID.fullmatch(card_uid) is None):
        raise ValueError("card tokens need card_uid: 8-20 hex digits")
    if kind == "app" and card_uid is not None:
        raise ValueError("app tokens are not bound to a card")
    if gtin is not None and (kind != "app" or not _valid_gtin(gtin)):
        raise ValueError("gtin: app tokens only, 14 digits with a valid check digit")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s <= 0:
        raise ValueError("ttl_s must be a positive int")
    if not 0 <= now <= _MAX_TIME - ttl_s:  # written so that NaN fails too
        raise ValueError("now and now + ttl_s must be UNIX times before year 10000")
    if nonce is None:
        nonce = secrets.token_bytes(NONCE_BYTES)
    elif len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    issued_at = int(now)
    claims: dict[str, Any] = {"k": key_id, "c": customer_id, "t": kind, "i": issued_at,
                              "e": issued_at + ttl_s, "n": _b64encode(nonce)}
    if card_uid is not None:
        claims["u"] = card_uid.lower()
    if gtin is not None:
        claims["g"] = gtin
    body = _b64encode(json.dumps(claims, separators=(",", ":")).encode("ascii"))
    signing_input = PREFIX + body
    return f"{signing_input}.{_b64encode(_sign(key, signing_input))}"


def verify_token(
    keys: Mapping[str, bytes],
    token: str,
    *,
    now: float,
    card_uid: str | None = None,
    leeway_s: float = 30.0,
) -> TokenClaims:
    """Verify ``token`` and return its claims, or raise the matching :class:`TokenError`.

    ``card_uid`` is the UID of the tag the token was read from, ``None`` for a QR scan. A card
    token is only accepted from its own tag; an app token is accepted from either (it is
    short-lived and single-use anyway). Replay protection is the caller's job, see
    :class:`NonceCache`.

    Only the key id is read before the signature is checked (it selects the key), and the
    claims are validated strictly after it, so a forged token costs one small bounded parse.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise TokenMalformed("token too long or not text")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX[:-1]:
        raise TokenMalformed("not a vt1 token")
    body, signature_part = parts[1], parts[2]
    payload = _b64decode(body, "claims")
    signature = _b64decode(signature_part, "signature")
    if len(signature) != _SIG_BYTES:
        raise TokenMalformed("signature has the wrong length")
    raw = _load_claims(payload)
    key_id = raw.get("k")
    if not isinstance(key_id, str) or key_id not in keys:
        raise TokenForged("unknown key id", reason="unknown_key")
    if not hmac.compare_digest(_sign(keys[key_id], PREFIX + body), signature):
        raise TokenForged("signature does not match")
    claims = _claims(raw)
    _check_binding(claims, card_uid)
    if claims.issued_at > now + leeway_s:
        raise TokenNotYetValid("token issued in the future")
    if now >= claims.expires_at + leeway_s:
        raise TokenExpired("token expired")
    return claims


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate claim")
    return result


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _load_claims(payload: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(payload.decode("utf-8"), object_pairs_hook=_reject_duplicates,
                         parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise TokenMalformed("claims are not a JSON object") from None
    if not isinstance(raw, dict):
        raise TokenMalformed("claims are not a JSON object")
    return raw


def _int_claim(raw: Mapping[str, Any], name: str) -> int:
    value = raw[name]
    if type(value) is not int or not 0 <= value <= _MAX_TIME:  # excludes bool, an int subclass
        raise TokenMalformed(f"claim {name!r} must be a UNIX time in seconds")
    return value


def _str_claim(raw: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = raw[name]
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise TokenMalformed(f"claim {name!r} has a bad value")
    return value


def _claims(raw: Mapping[str, Any]) -> TokenClaims:
    """Validate signed claims exactly; anything unexpected means a broken issuer."""
    kind = raw.get("t")
    if kind not in _KINDS:
        raise TokenMalformed("claim 't' must be 'card' or 'app'")
    expected = {"k", "c", "t", "i", "e", "n"} | ({"u"} if kind == "card" else set())
    if set(raw) != expected and not (kind == "app" and set(raw) == expected | {"g"}):
        raise TokenMalformed("unexpected set of claims")
    gtin = None
    if "g" in raw:
        gtin = _str_claim(raw, "g", _GTIN)
        if not _valid_gtin(gtin):
            raise TokenMalformed("claim 'g' has a bad check digit")
    issued_at, expires_at = _int_claim(raw, "i"), _int_claim(raw, "e")
    if expires_at <= issued_at:
        raise TokenMalformed("token expires before it is issued")
    return TokenClaims(
        key_id=_str_claim(raw, "k", _KEY_ID),
        customer_id=_str_claim(raw, "c", _CUSTOMER_ID),
        kind="card" if kind == "card" else "app",
        issued_at=issued_at,
        expires_at=expires_at,
        nonce=_str_claim(raw, "n", _NONCE),
        card_uid=_str_claim(raw, "u", _UID) if kind == "card" else None,
        gtin=gtin,
    )


def _valid_gtin(gtin: str) -> bool:
    return _GTIN.fullmatch(gtin) is not None and int(gtin[-1]) == gtin_check_digit(gtin[:-1])


def _check_binding(claims: TokenClaims, card_uid: str | None) -> None:
    """Card tokens are only valid on the tag they were written to.

    Checked before expiry: a token on the wrong tag is evidence of cloning, which staff
    should hear about even if the copied token is also stale.
    """
    if claims.kind != "card":
        return
    if card_uid is None:
        raise TokenWrongCard("card token presented without its tag (e.g. as a QR code)")
    if claims.card_uid is None or card_uid.lower() != claims.card_uid.lower():
        raise TokenWrongCard("card token read from a different tag")


class NonceCache:
    """Bounded in-memory record of used single-use nonces, for devices and tests.

    The edge node keeps its own durable record; this helper has the same semantics.
    When full, the entry closest to expiry is dropped first: under a flood that reopens the
    smallest replay window, where refusing new tokens would lock every customer out.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max_entries = max_entries
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, nonce: object) -> bool:
        return nonce in self._expiry

    def check_and_add(self, nonce: str, expires_at: float, now: float) -> None:
        """Record ``nonce``; raise :class:`TokenReplayed` if it was recorded and not expired.

        ``expires_at`` is when the token stops verifying, i.e. its expiry plus the leeway
        given to :func:`verify_token`; after that a replay fails verification anyway.
        """
        self._evict_expired(now)
        if nonce in self._expiry:
            raise TokenReplayed("token already used")
        if expires_at <= now:
            return
        while len(self._expiry) >= self._max_entries:
            _, oldest = heapq.heappop(self._heap)
            del self._expiry[oldest]
        self._expiry[nonce] = expires_at
        heapq.heappush(self._heap, (expires_at, nonce))

    def check_claims(self, claims: TokenClaims, *, now: float, leeway_s: float = 30.0) -> None:
        """Apply the replay rule to verified claims: app tokens once, card tokens always."""
        if claims.kind == "app":
            self.check_and_add(claims.nonce, claims.expires_at + leeway_s, now)

    def _evict_expired(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            _, nonce = heapq.heappop(self._heap)
            del self._expiry[nonce]
