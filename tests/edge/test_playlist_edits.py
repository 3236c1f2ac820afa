"""edge.playlist_edits: whole-document saves with a version check, takeovers, pruning."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.playlists import PlaylistError, parse_playlists, resolve
from edge import playlist_edits as edits
from edge.db import connect, migrate

PARIS = ZoneInfo("Europe/Paris")
TEXT = {"kind": "text", "id": "t1", "title": "Bonjour"}


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    db = connect(tmp_path / "edge.db")
    migrate(db)
    db.conn.execute("INSERT INTO devices (device_id, kind, zone, state) VALUES"
                    " ('sign-01', 'signage', 'shoes', 'online')")
    return db.conn


def _doc(*playlists: dict) -> dict:
    return {"format": "vitrine-playlist/1", "timezone": "Europe/Paris",
            "playlists": list(playlists)}


def test_save_stores_the_canonical_document_and_checks_the_version(conn):
    doc, version = edits.current(conn)
    assert version is None and doc["playlists"] == []
    first = edits.save(conn, _doc({"id": "a", "zones": ["*"], "items": [TEXT]}), None, 0)
    stored, version = edits.current(conn)
    assert version == first.version and stored["playlists"][0]["id"] == "a"
    # A form drawn before that save (version None) is refused, and stores nothing.
    with pytest.raises(edits.EditConflict):
        edits.save(conn, _doc({"id": "b", "zones": ["*"], "items": [TEXT]}), None, 0)
    assert edits.current(conn)[1] == first.version
    # An invalid document is refused before the version is even looked at.
    with pytest.raises(PlaylistError):
        edits.save(conn, _doc({"id": "c", "zones": ["*"], "items": []}), version, 0)
    assert edits.current(conn)[1] == first.version
    assert not conn.in_transaction


def test_a_change_that_would_not_fit_in_a_screens_command_is_refused(conn):
    items = [{"kind": "text", "id": f"t{i}", "title": "x" * 1500} for i in range(20)]
    with pytest.raises(PlaylistError, match="sign-01"):
        edits.save(conn, _doc({"id": "big", "zones": ["shoes"], "items": items}), None, 0)
    assert edits.current(conn)[1] is None
    # The same playlist for a zone without screens goes to nobody: nothing to overflow.
    edits.save(conn, _doc({"id": "big", "zones": ["kitchen"], "items": items}), None, 0)


def _paris(*args: int) -> float:
    return datetime(*args, tzinfo=PARIS).timestamp()


@pytest.mark.parametrize("start, minutes", [((2026, 6, 1, 10, 0), 30),
                                            ((2026, 6, 1, 23, 30), 90),   # crosses midnight
                                            ((2026, 6, 7, 22, 0), 12 * 60),  # Sunday -> Monday
                                            ((2026, 12, 31, 23, 59), 2)])  # crosses the year
def test_a_takeover_is_active_exactly_from_now_to_its_end(start, minutes):
    now = _paris(*start)
    takeover = edits.takeover_playlist("shoes", TEXT, minutes, now, PARIS)
    doc = parse_playlists(_doc({"id": "usual", "default": True, "zones": ["*"],
                                "items": [{**TEXT, "id": "u"}]}, takeover))

    def playing(at: float) -> str:
        chosen = resolve(doc, "sign-01", "shoes", at)
        assert chosen is not None
        return chosen.id

    assert playing(now) == takeover["id"]
    assert playing(now + minutes * 60 - 1) == takeover["id"]
    assert playing(now + minutes * 60) == "usual"
    assert playing(now - 1) == "usual"
    for days in (1, 7):  # the same daypart on a later day, or a week later: over
        assert playing(now + days * 86400 + 60) == "usual"
    assert resolve(doc, "sign-02", "kitchen", now).id == "usual"  # only its zone


@settings(max_examples=150, deadline=None)
@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)),
       st.integers(1, edits.MAX_TAKEOVER_MIN), st.integers(0, 24 * 60 * 3))
def test_takeover_is_active_iff_within_its_window(start, minutes, probe_min):
    """Property: for any start and length, the takeover plays at t iff start <= t < end."""
    tz = ZoneInfo("UTC")  # no DST gap: wall-clock minutes are real minutes
    now = start.replace(tzinfo=tz, second=0, microsecond=0).timestamp()
    takeover = edits.takeover_playlist("shoes", TEXT, minutes, now, tz)
    doc = parse_playlists({"timezone": "UTC", "playlists": [takeover]})
    at = now - 60 * 24 * 60 + probe_min * 60  # from a day before to two days after
    active = resolve(doc, "s", "shoes", at) is not None
    assert active == (now <= at < now + minutes * 60)


def test_expired_takeovers_are_pruned_at_the_next_save(conn):
    now = _paris(2026, 6, 1, 10, 0)
    old = edits.takeover_playlist("shoes", TEXT, 30, now - 3600, PARIS)
    live = edits.takeover_playlist("shoes", {**TEXT, "id": "t2"}, 30, now - 600, PARIS)
    plain = {"id": "plain", "zones": ["*"], "items": [TEXT]}
    saved = edits.save(conn, _doc(old, live, plain), None, now)
    assert [p.id for p in saved.playlists] == [live["id"], "plain"]
    assert edits.takeover_end(plain, PARIS) is None
    assert edits.takeover_end(live, PARIS) == datetime(2026, 6, 1, 10, 20, tzinfo=PARIS)


def test_takeover_refuses_bad_zone_and_length():
    with pytest.raises(PlaylistError):
        edits.takeover_playlist("a/b", TEXT, 10, 0, PARIS)
    for minutes in (0, edits.MAX_TAKEOVER_MIN + 1):
        with pytest.raises(PlaylistError):
            edits.takeover_playlist("shoes", TEXT, minutes, 0, PARIS)


def test_current_reads_what_the_cli_loaded(conn):
    from edge.signage_service import store_playlists

    loaded = store_playlists(conn, json.dumps(_doc({"id": "x", "zones": ["*"],
                                                    "items": [TEXT]})))
    doc, version = edits.current(conn)
    assert version == loaded.version and edits.find(doc, "x")["items"] == [
        {**TEXT, "duration_s": 10.0}]
    assert edits.find(doc, "nope") is None
    assert timedelta(minutes=edits.MAX_TAKEOVER_MIN) < timedelta(days=1)
