"""Property tests of the ingest parser/validator: it is the edge of the trust boundary."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from central.credentials import ADMIN, Principal
from central.errors import EventRejected
from central.events import CHANNELS, STORE_TYPES, Event, parse_event
from central.ingest import parse_batch

STORE = Principal("store", "store-a")
WEB = Principal("channel", "web")
NOW = 1_800_000_000.0

#: Valid ids: any UTF-8 text but NUL, which central refuses (PostgreSQL text cannot hold it).
ids = st.text(st.characters(codec="utf-8", blacklist_characters="\x00"), min_size=1,
              max_size=40)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)
timestamps = st.floats(min_value=1e9, max_value=NOW)
gtins = st.from_regex(r"^[0-9]{14}$", fullmatch=True)


@st.composite
def store_interest(draw: st.DrawFn) -> dict:
    at = draw(timestamps)
    return {"event_id": draw(ids), "type": "interest", "store_id": "store-a",
            "device_id": draw(ids), "zone": draw(st.none() | ids), "shelf": None,
            "gtin": draw(st.none() | gtins),
            "product": draw(st.none() | st.fixed_dictionaries({"category": ids})),
            "customer_id": draw(st.none() | ids), "session_id": draw(ids),
            "source": draw(st.sampled_from(["nfc", "qr", "frame"])), "received_at": at,
            "device_ts": draw(timestamps)}


@given(json_values, st.sampled_from([STORE, WEB, ADMIN]))
@settings(max_examples=300)
def test_any_json_is_parsed_or_rejected_never_crashes(raw: object, who: Principal) -> None:
    try:
        ev = parse_event(raw, who, now=NOW)
    except EventRejected as exc:
        assert str(exc)
    else:
        assert isinstance(ev, Event)


@given(store_interest())
def test_valid_store_events_parse_to_their_columns(raw: dict) -> None:
    ev = parse_event(raw, STORE, now=NOW)
    assert (ev.event_id, ev.kind, ev.channel, ev.store_id) == (
        raw["event_id"], "interest", "store", "store-a")
    assert ev.occurred_at == raw["received_at"]
    assert ev.gtin == raw["gtin"]
    assert ev.category == (raw["product"] or {}).get("category")
    assert ev.customer_id == (raw["customer_id"] or None)


@given(store_interest(), st.sampled_from(["event_id", "type", "store_id", "device_id",
                                          "session_id", "source", "received_at", "device_ts"]))
def test_missing_required_field_is_rejected(raw: dict, key: str) -> None:
    del raw[key]
    try:
        parse_event(raw, STORE, now=NOW)
    except EventRejected as exc:
        assert key in str(exc) or "type" in str(exc)
    else:
        raise AssertionError(f"accepted an event without {key}")


@given(store_interest(), st.text(min_size=1, max_size=20).filter(lambda s: s != "store-a"))
def test_store_cannot_speak_for_another_store(raw: dict, other: str) -> None:
    raw["store_id"] = other
    try:
        parse_event(raw, STORE, now=NOW)
    except EventRejected as exc:
        assert "store" in str(exc)
    else:
        raise AssertionError("accepted another store's event")


@given(store_interest(), st.sampled_from([float("nan"), float("inf"), -1.0, 5.0, NOW + 2e5]))
def test_implausible_timestamps_are_rejected(raw: dict, ts: float) -> None:
    raw["received_at"] = ts
    try:
        parse_event(raw, STORE, now=NOW)
    except EventRejected as exc:
        assert "received_at" in str(exc)
    else:
        raise AssertionError(f"accepted received_at={ts}")


@given(st.sampled_from([c for c in CHANNELS if c != "store"]), timestamps, ids,
       st.integers(min_value=-1000, max_value=1000).filter(bool))
def test_channel_events_only_from_their_channel(channel: str, at: float, cust: str,
                                                points: int) -> None:
    raw = {"event_id": "e1", "type": "loyalty", "channel": channel, "occurred_at": at,
           "customer_id": cust, "points": points,
           "reference": {"kind": "purchase", "id": "p1"}}
    if channel == "web":
        assert parse_event(raw, WEB, now=NOW).points == points
    else:
        try:
            parse_event(raw, WEB, now=NOW)
        except EventRejected:
            pass
        else:
            raise AssertionError(f"web credential sent a {channel} event")
    assert parse_event(raw, ADMIN, now=NOW).channel == channel


@given(st.lists(st.one_of(store_interest(), json_values), max_size=30))
def test_batch_partition_is_complete(raws: list) -> None:
    good, rejected = parse_batch({"events": raws}, STORE, 1000)
    assert len(good) + len(rejected) == len(raws)
    assert sorted(r["index"] for r in rejected) == sorted(set(r["index"] for r in rejected))
    assert all(isinstance(r["reason"], str) and r["reason"] for r in rejected)


@st.composite
def store_play(draw: st.DrawFn) -> dict:
    start = draw(timestamps)
    duration = draw(st.floats(min_value=0, max_value=86_400))
    return {"event_id": draw(ids), "type": "play", "store_id": "store-a",
            "device_id": draw(ids.filter(lambda s: len(s) <= 64)),
            # Any text central stores: NUL is refused everywhere (PostgreSQL cannot hold it).
            "zone": draw(st.none() | st.text(st.characters(
                codec="utf-8", blacklist_characters="\x00"), max_size=64)),
            "item_id": draw(ids), "kind": draw(st.sampled_from(["spotlight", "text"])),
            "playlist_id": None, "trigger": draw(st.sampled_from(["schedule", "tap"])),
            "gtin": draw(st.none() | gtins), "started_at": start, "duration_s": duration,
            "shown_from": start, "shown_until": start + duration, "clock": "edge",
            "received_at": start + duration, "device_ts": None}


@given(store_play(), st.dictionaries(st.sampled_from(
    ["customer_id", "session_id", "shown_from", "shown_until", "kind", "zone", "gtin",
     "duration_s", "extra"]), json_values, max_size=3))
def test_proof_of_play_parses_or_is_rejected_and_never_names_anyone(raw: dict,
                                                                     changes: dict) -> None:
    ev = parse_event(raw, STORE, now=NOW)
    assert (ev.kind, ev.occurred_at, ev.customer_id, ev.session_id) == (
        "play", raw["shown_from"], None, None)
    mutated = {**raw, **changes}
    try:
        ev = parse_event(mutated, STORE, now=NOW)
    except EventRejected as exc:
        assert str(exc)
    else:
        assert "customer_id" not in mutated and "session_id" not in mutated
        assert ev.customer_id is None and ev.session_id is None
        assert mutated["shown_until"] >= mutated["shown_from"]


def test_store_types_are_the_contract_ones() -> None:
    assert set(STORE_TYPES) == {"interest", "presence", "security", "play"}
    assert parse_event({"event_id": "x", "type": "security", "store_id": "store-a",
                        "device_id": "d", "reason": "forged", "received_at": time.time()},
                       STORE).kind == "security"


@given(store_interest(), st.sampled_from(["device_ts", "received_at"]),
       st.one_of(st.floats(min_value=1e11, exclude_min=True, allow_infinity=True),
                 st.floats(max_value=-1e-9, allow_infinity=True), st.just(float("nan")),
                 st.integers(min_value=10**11 + 1)))
def test_out_of_range_numbers_are_rejected_with_their_field(raw: dict, key: str,
                                                            value: float) -> None:
    """Every number is bounded (schemas, and 2**53 for any number anywhere): issue 11."""
    raw[key] = value
    try:
        parse_event(raw, STORE, now=NOW)
    except EventRejected as exc:
        assert key in str(exc)
    else:
        raise AssertionError(f"accepted {key}={value!r}")


@given(st.sampled_from(["fields", "consents", "reference", "product"]),
       st.sampled_from([float("nan"), float("inf"), 2**60, -(2**60)]))
def test_no_nan_or_huge_number_anywhere_in_a_channel_event(key: str, value: float) -> None:
    raw = {"event_id": "e1", "type": "loyalty", "channel": "web", "occurred_at": NOW,
           "customer_id": "c1", "points": 5, "reference": {"kind": "purchase", "id": "p"},
           key: {"nested": [value]}}
    try:
        parse_event(raw, WEB, now=NOW)
    except EventRejected as exc:
        assert key in str(exc)
    else:
        raise AssertionError(f"accepted {value!r} in {key}")


def test_a_nul_in_any_text_field_is_refused_with_its_field():
    import pytest

    from central.json_safe import problem

    assert problem({"a": {"b": ["ok", "x\x00y"]}}) == "a.b[1]: text must not contain NUL characters"
    assert problem({"k\x00": 1}) is not None
    with pytest.raises(EventRejected, match="NUL"):
        parse_event({"event_id": "e\x00", "type": "interest", "store_id": "store-a"}, STORE,
                    now=NOW)
