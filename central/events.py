"""Parse and validate one ingested event into a normalised :class:`Event`.

Store edges send the contract events (``contract/schemas/{interest,presence,
security}.json``) unchanged, so central validates them with the very schemas
the edge used. Other channels (web, app, call centre, CRM, in-store kiosk
backends) send the channel envelope below, which carries the same facts
without the in-store device fields. Everything here is pure (no I/O): it is
property-tested, and a bad event becomes an :class:`EventRejected` with a reason
instead of failing the whole batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import fastjsonschema

from central.credentials import Principal
from central.errors import EventRejected
from central.json_safe import problem
from contract.validation import SchemaError, validate

#: Channels whose events can reach a profile. ``store`` is the edge outbox.
CHANNELS = ("store", "kiosk", "web", "app", "call_centre", "crm")
#: Channels a store credential may send for its own store.
STORE_CHANNELS = ("store", "kiosk")
#: Contract event types a store edge forwards (``play``: proof of play, no person in it).
STORE_TYPES = ("interest", "presence", "security", "play")
#: The schema of each store type when it is not named like the type.
_STORE_SCHEMAS = {"play": "play_event"}
#: Event types of the channel envelope.
CHANNEL_TYPES = ("interest", "identify", "profile", "loyalty", "consent")
#: Event kinds subject to tracking consent (the others are contractual data).
TRACKING_KINDS = frozenset({"interest", "presence", "identify"})
#: Profile fields a channel may set (survivorship resolves conflicts between sources).
PROFILE_FIELDS = ("name", "email", "phone", "address", "birth_date", "preferred_store")
#: Consent purposes a channel may record.
CONSENT_PURPOSES = ("tracking", "marketing")
#: Profile fields an in-store kiosk may set. Contact data (email, phone, address,
#: birth date) and the name change only from the customer's own channels (web, app)
#: and those acting at their request (call centre, CRM): a shared kiosk, or a leaked
#: store token, must not be able to redirect a customer's mail.
KIOSK_PROFILE_FIELDS = ("preferred_store",)
#: What a loyalty ledger entry is tied to (see :mod:`central.loyalty`).
LOYALTY_REFERENCES = ("order", "purchase")
#: Consent decisions dated further ahead than this are refused (see :mod:`central.consent`).
CONSENT_SKEW_S = 300.0

MAX_ID_LEN = 128
#: Timestamps before 2001-09-09 (1e9 s) or more than a day ahead are clock bugs.
MIN_TS = 1e9
MAX_TS = 1e11
FUTURE_SLACK_S = 86_400.0
_TS = {"type": "number", "minimum": MIN_TS, "maximum": MAX_TS}

_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LEN}
#: Scope of a device-scoped alias: a channel or device family (``app``, ``web``, ``kiosk``).
#: No ``:`` (the stored key is ``scope:alias``) and lower case, so one scope has one spelling.
ALIAS_SCOPE_PATTERN = "^[a-z][a-z0-9_.-]{0,31}$"
_ALIAS = {"type": ["object", "null"], "required": ["alias", "scope"],
          "additionalProperties": False,
          "properties": {"alias": _ID, "scope": {"type": "string",
                                                 "pattern": ALIAS_SCOPE_PATTERN}}}
_OPT_ID = {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_ID_LEN}

CHANNEL_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event_id", "type", "channel", "occurred_at"],
    "properties": {
        "event_id": _ID,
        "type": {"enum": list(CHANNEL_TYPES)},
        "channel": {"enum": [c for c in CHANNELS if c != "store"]},
        "occurred_at": _TS,
        "customer_id": _OPT_ID,
        "session_id": _OPT_ID,
        "alias": _ALIAS,
        "store_id": _OPT_ID,
        "zone": {"type": ["string", "null"], "maxLength": MAX_ID_LEN},
        "gtin": {"type": ["string", "null"], "pattern": "^[0-9]{14}$"},
        "product": {"type": ["object", "null"], "maxProperties": 32},
        "fields": {
            "type": "object",
            "propertyNames": {"enum": list(PROFILE_FIELDS)},
            "additionalProperties": {"type": ["string", "null"], "maxLength": 512},
        },
        "points": {"type": "integer", "minimum": -1_000_000, "maximum": 1_000_000},
        "reference": {
            "type": "object", "required": ["kind", "id"], "additionalProperties": False,
            "properties": {"kind": {"enum": list(LOYALTY_REFERENCES)}, "id": _ID},
        },
        "consents": {
            "type": "object",
            "propertyNames": {"enum": list(CONSENT_PURPOSES)},
            "additionalProperties": {"type": "boolean"},
        },
    },
}

_validate_channel_event = fastjsonschema.compile(CHANNEL_EVENT_SCHEMA)


@dataclass(frozen=True, slots=True)
class Event:
    """An accepted-for-processing event, in the columns central stores."""

    event_id: str
    kind: str
    channel: str
    store_id: str | None
    zone: str | None
    customer_id: str | None
    session_id: str | None
    gtin: str | None
    category: str | None
    points: int | None
    occurred_at: float
    payload: dict[str, Any]
    #: Device-scoped alias as ``scope:alias`` (see :mod:`central.identity`); channel events only.
    alias_key: str | None = None

    @property
    def tracking(self) -> bool:
        return self.kind in TRACKING_KINDS


def alias_key(scope: str, alias: str) -> str:
    """Stored form of an alias; scopes cannot contain ``:``, so the split is unambiguous."""
    return f"{scope}:{alias}"


def _check_id(raw: dict[str, Any]) -> str:
    event_id = raw.get("event_id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_ID_LEN:
        raise EventRejected(f"event_id must be a string of 1..{MAX_ID_LEN} characters")
    return event_id


def _check_ts(value: Any, name: str, now: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EventRejected(f"{name} must be a finite number of seconds since the epoch")
    if not MIN_TS <= value <= now + FUTURE_SLACK_S:
        raise EventRejected(f"{name} {value!r} is outside the plausible range")
    return float(value)


def _category(product: Any) -> str | None:
    if isinstance(product, dict):
        cat = product.get("category")
        if isinstance(cat, str) and 0 < len(cat) <= MAX_ID_LEN:
            return cat
    return None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse_store_event(raw: dict[str, Any], principal: Principal, now: float) -> Event:
    kind = raw.get("type")
    if kind not in STORE_TYPES:
        raise EventRejected(f"type must be one of {STORE_TYPES} on the store channel")
    try:
        validate(_STORE_SCHEMAS.get(kind, kind), raw)
    except SchemaError as exc:
        raise EventRejected(str(exc)) from None
    if kind == "play" and raw["shown_until"] < raw["shown_from"]:
        raise EventRejected("play: shown_until is before shown_from")
    if principal.kind == "store" and raw["store_id"] != principal.name:
        raise EventRejected(f"store_id {raw['store_id']!r} is not the authenticated store")
    for key in ("store_id", "device_id", "customer_id", "session_id"):
        if isinstance(raw.get(key), str) and not 0 < len(raw[key]) <= MAX_ID_LEN:
            raise EventRejected(f"{key} must be 1..{MAX_ID_LEN} characters")
    return Event(
        event_id=raw["event_id"], kind=kind, channel="store", store_id=raw["store_id"],
        zone=_opt_str(raw.get("zone")), customer_id=_opt_str(raw.get("customer_id")),
        session_id=_opt_str(raw.get("session_id")), gtin=_opt_str(raw.get("gtin")),
        category=_category(raw.get("product")), points=None,
        occurred_at=_check_ts(raw["shown_from"] if kind == "play" else raw["received_at"],
                              "shown_from" if kind == "play" else "received_at", now),
        payload=raw)


_REQUIRED_BY_TYPE = {
    "identify": ("customer_id",),
    "profile": ("customer_id", "fields"),
    "loyalty": ("customer_id", "points", "reference"),
    "consent": ("customer_id", "consents"),
}


def _parse_channel_event(raw: dict[str, Any], principal: Principal, now: float,
                         consent_skew: float) -> Event:
    try:
        _validate_channel_event(raw)
    except fastjsonschema.JsonSchemaException as exc:
        raise EventRejected(f"channel event: {exc.message}") from None
    channel, kind = raw["channel"], raw["type"]
    if principal.kind == "channel" and channel != principal.name:
        raise EventRejected(f"channel {channel!r} is not the authenticated channel")
    if principal.kind == "store":
        if channel not in STORE_CHANNELS:
            raise EventRejected(f"a store credential cannot send {channel!r} events")
        if raw.get("store_id") not in (None, principal.name):
            raise EventRejected(f"store_id {raw['store_id']!r} is not the authenticated store")
    for key in _REQUIRED_BY_TYPE.get(kind, ()):
        if raw.get(key) in (None, {}, ""):
            raise EventRejected(f"{kind} events need {key}")
    if kind == "profile" and channel == "kiosk":
        refused = sorted(set(raw["fields"]) - set(KIOSK_PROFILE_FIELDS))
        if refused:
            raise EventRejected(f"the kiosk channel cannot change {', '.join(refused)}: "
                                "contact data changes only from the customer's own channels")
    if kind == "loyalty" and raw["points"] == 0:
        raise EventRejected("loyalty events need non-zero points")
    if kind == "consent" and raw["occurred_at"] > now + consent_skew:
        raise EventRejected(f"consent dated {raw['occurred_at'] - now:.0f} s in the future "
                            f"(at most {consent_skew:.0f} s of clock skew)")
    alias = raw.get("alias")
    aliased = alias_key(alias["scope"], alias["alias"]) if alias else None
    if kind == "identify" and not (raw.get("session_id") or aliased):
        raise EventRejected("identify events need session_id or alias")
    if kind == "interest":
        if not (raw.get("customer_id") or raw.get("session_id") or aliased):
            raise EventRejected("interest events need customer_id, session_id or alias")
        if not (raw.get("gtin") or _category(raw.get("product"))):
            raise EventRejected("interest events need gtin or product.category")
    store_id = raw.get("store_id") or (principal.name if principal.kind == "store" else None)
    return Event(
        event_id=raw["event_id"], kind=kind, channel=channel, store_id=store_id,
        zone=_opt_str(raw.get("zone")), customer_id=_opt_str(raw.get("customer_id")),
        session_id=_opt_str(raw.get("session_id")), gtin=_opt_str(raw.get("gtin")),
        category=_category(raw.get("product")),
        points=raw["points"] if kind == "loyalty" else None,
        occurred_at=_check_ts(raw["occurred_at"], "occurred_at", now), payload=raw,
        alias_key=aliased)


def parse_event(raw: Any, principal: Principal, now: float | None = None,
                consent_skew: float = CONSENT_SKEW_S) -> Event:
    """Validate ``raw`` as sent by ``principal``; raise :class:`EventRejected` with a reason.

    An event without ``channel`` (or ``channel: "store"``) is a contract event
    from an edge outbox; any other channel uses the channel envelope.
    """
    now = time.time() if now is None else now
    if not isinstance(raw, dict):
        raise EventRejected("an event must be a JSON object")
    reason = problem(raw)
    if reason:
        raise EventRejected(reason)
    _check_id(raw)
    channel = raw.get("channel", "store")
    if channel == "store":
        if principal.kind == "channel":
            raise EventRejected("a channel credential cannot send store-channel events")
        body = {k: v for k, v in raw.items() if k != "channel"}
        return _parse_store_event(body, principal, now)
    if channel not in CHANNELS:
        raise EventRejected(f"channel must be one of {CHANNELS}")
    return _parse_channel_event(raw, principal, now, consent_skew)
