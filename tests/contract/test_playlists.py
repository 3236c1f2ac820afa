"""contract.playlists: the file format and which playlist plays when."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.playlists import PlaylistError, load_playlists, parse_playlists, resolve

PARIS = ZoneInfo("Europe/Paris")


def _item(i: str) -> dict:
    return {"kind": "text", "id": i, "title": i}


DOC = {
    "format": "vitrine-playlist/1", "timezone": "Europe/Paris",
    "playlists": [
        {"id": "default", "default": True, "zones": ["*"], "items": [_item("d")]},
        {"id": "shoes-default", "default": True, "zones": ["shoes"], "items": [_item("sd")]},
        {"id": "morning", "priority": 5, "zones": ["shoes"],
         "schedule": {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "12:00"},
         "items": [_item("m")]},
        {"id": "night", "priority": 5, "zones": ["*"],
         "schedule": {"from": "22:00", "to": "02:00"}, "items": [_item("n")]},
        {"id": "sale", "priority": 50, "screens": ["sign-shoes-01"],
         "schedule": {"start_date": "2026-07-01", "end_date": "2026-07-15"},
         "items": [_item("s")]},
        {"id": "entrance-only", "screens": ["sign-entrance-01"], "items": [_item("e")]},
    ]}


def _at(y, mo, d, h, mi=0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=PARIS).timestamp()


@pytest.mark.parametrize("screen, zone, when, expected", [
    ("sign-shoes-01", "shoes", _at(2026, 6, 1, 9), "morning"),       # Monday morning
    ("sign-shoes-01", "shoes", _at(2026, 6, 1, 12), "shoes-default"),  # end is exclusive
    ("sign-shoes-01", "shoes", _at(2026, 6, 6, 9), "shoes-default"),  # Saturday
    ("sign-bags-01", "bags", _at(2026, 6, 1, 9), "default"),         # zone-less fallback
    ("sign-bags-01", "bags", _at(2026, 6, 1, 23), "night"),
    ("sign-bags-01", "bags", _at(2026, 6, 2, 1, 30), "night"),       # after midnight
    ("sign-bags-01", "bags", _at(2026, 6, 2, 2), "default"),
    ("sign-shoes-01", "shoes", _at(2026, 7, 1, 9), "sale"),          # priority wins
    ("sign-shoes-01", "shoes", _at(2026, 7, 15, 23, 59), "sale"),    # end date inclusive
    ("sign-shoes-01", "shoes", _at(2026, 7, 16, 9), "morning"),
    ("sign-shoes-02", "shoes", _at(2026, 7, 1, 9), "morning"),       # sale is screen-only
    ("sign-entrance-01", "entrance", _at(2026, 6, 6, 15), "entrance-only"),
])
def test_resolution(screen, zone, when, expected):
    playlists = parse_playlists(DOC)
    assert resolve(playlists, screen, zone, when).id == expected


def test_equal_priority_prefers_the_more_specific_target_then_the_id():
    doc = {"playlists": [
        {"id": "b", "zones": ["*"], "items": [_item("1")]},
        {"id": "a", "zones": ["shoes"], "items": [_item("2")]},
        {"id": "c", "zones": ["*"], "items": [_item("3")]}]}
    assert resolve(parse_playlists(doc), "s1", "shoes", 0).id == "a"
    assert resolve(parse_playlists(doc), "s1", "bags", 0).id == "c"
    doc["playlists"].reverse()
    assert resolve(parse_playlists(doc), "s1", "shoes", 0).id == "a"


def test_nothing_for_a_screen_nobody_targets():
    doc = {"playlists": [{"id": "x", "zones": ["shoes"], "items": [_item("1")]}]}
    assert resolve(parse_playlists(doc), "s1", "bags", 0) is None


def test_for_screen_keeps_only_what_can_play_there_and_round_trips():
    playlists = parse_playlists(DOC)
    mine = playlists.for_screen("sign-shoes-02", "shoes")
    assert {p.id for p in mine.playlists} == {"default", "shoes-default", "morning", "night"}
    again = parse_playlists(json.loads(json.dumps(mine.to_dict())))
    assert again == mine and again.version == mine.version
    assert mine.version != playlists.version


def test_every_problem_is_reported_at_once():
    doc = {"format": "x", "timezone": "Mars/Olympus", "playlists": [
        {"id": "a", "zones": ["shoes"], "schedule": {"from": "25:00", "to": "10:00",
                                                     "days": ["monday"]},
         "items": [{"kind": "spotlight", "id": "p", "gtin": "1", "customer_id": "C1"}]},
        {"id": "a", "items": []}]}
    with pytest.raises(PlaylistError) as err:
        parse_playlists(doc)
    text = " | ".join(err.value.problems)
    for fragment in ("format", "timezone", "HH:MM", "days", "personal data", "duplicate id",
                     "targets nothing", "items must be"):
        assert fragment in text, fragment


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(
                        st.sampled_from(["format", "timezone", "playlists", "id", "zones",
                                         "items", "schedule", "from", "to", "days", "default",
                                         "priority", "kind", "title", "start_date"]),
                        c, max_size=6), max_leaves=25))
def test_loader_raises_only_playlist_error(data):
    try:
        playlists = parse_playlists(data)
    except PlaylistError:
        return
    for p in playlists.playlists:
        assert p.items


def test_not_json_is_a_playlist_error():
    with pytest.raises(PlaylistError, match="not JSON"):
        load_playlists(b"\xff{")
