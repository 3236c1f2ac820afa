"""signage.player: schedule, spotlight, offline cache and proof of play, on a real disk."""

from __future__ import annotations

import json
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from contract.playlists import parse_playlists
from signage.cache import ScreenCache
from signage.player import Player
from signage.profiles import LANDSCAPE
from signage.sinks import DiskSink

from .fixtures import GTIN

UTC = ZoneInfo("UTC")
PIC = Image.new("RGB", (64, 64), (10, 200, 30))


def _jpeg() -> bytes:
    from io import BytesIO
    out = BytesIO()
    PIC.save(out, "JPEG")
    return out.getvalue()


JPEG = _jpeg()
import hashlib  # noqa: E402

PIC_ID = hashlib.sha256(JPEG).hexdigest()


def _doc(morning_title="Bonjour") -> dict:
    return {"format": "vitrine-playlist/1", "timezone": "UTC", "playlists": [
        {"id": "default", "default": True, "zones": ["*"], "items": [
            {"kind": "text", "id": "d1", "title": "Un", "duration_s": 5},
            {"kind": "image", "id": "d2", "image": PIC_ID, "duration_s": 10}]},
        {"id": "morning", "priority": 1, "zones": ["shoes"],
         "schedule": {"from": "08:00", "to": "12:00"},
         "items": [{"kind": "text", "id": "m1", "title": morning_title, "duration_s": 7}]}]}


def _t(h, m=0, s=0) -> float:
    return datetime(2026, 6, 1, h, m, s, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def player(tmp_path):
    clock = Clock(_t(7, 59))
    plays: list[dict] = []
    fetched: list[str] = []

    def fetch(asset_id):
        fetched.append(asset_id)
        return JPEG if asset_id == PIC_ID else None

    p = Player("sign-shoes-01", "shoes", LANDSCAPE, ScreenCache(tmp_path / "cache"),
               DiskSink(tmp_path / "frames", "sign-shoes-01"), report=plays.append,
               fetch_asset=fetch, hold_s=15.0, clock=clock)
    p.set_playlists(parse_playlists(_doc()))
    return p, clock, plays, fetched, tmp_path


def test_rotation_follows_durations_and_the_schedule_switches_at_the_daypart(player):
    p, clock, plays, fetched, _tmp = player
    assert fetched == [PIC_ID]
    assert p.tick(_t(7, 59, 0)).id == "d1"
    assert p.tick(_t(7, 59, 4)).id == "d1"
    assert p.tick(_t(7, 59, 5)).id == "d2"
    assert p.tick(_t(7, 59, 14)).id == "d2"
    assert p.tick(_t(7, 59, 15)).id == "d1"
    assert p.tick(_t(8, 0, 0)).id == "m1"
    assert [(r["item_id"], r["trigger"], r["duration_s"]) for r in plays] == [
        ("d1", "schedule", 5.0), ("d2", "schedule", 10.0), ("d1", "schedule", 45.0)]
    assert plays[-1]["playlist_id"] == "default"


def test_spotlight_holds_then_returns_and_is_reported_as_a_tap(player):
    p, clock, plays, _f, tmp = player
    p.tick(_t(9))
    clock.now = _t(9, 0, 1)
    p.on_command(SimpleNamespace(cmd="show_product", gtin=GTIN, name="Trail Runner 2",
                                 brand="Kestrel", price_cents=11999, currency="EUR"))
    assert p.tick(_t(9, 0, 1)).kind == "spotlight"
    meta = json.loads((tmp / "frames" / "sign-shoes-01.json").read_text())
    assert meta["kind"] == "spotlight" and meta["trigger"] == "tap" and meta["gtin"] == GTIN
    assert Image.open(tmp / "frames" / "sign-shoes-01.jpg").size == (1920, 1080)
    clock.now = _t(9, 0, 10)  # same product again: hold extended, no new frame
    p.on_command(SimpleNamespace(cmd="show_product", gtin=GTIN, name="Trail Runner 2",
                                 brand="Kestrel", price_cents=11999, currency="EUR"))
    frames = p.counters["frames_total"]
    assert p.tick(_t(9, 0, 20)).kind == "spotlight" and p.counters["frames_total"] == frames
    assert p.tick(_t(9, 0, 25)).id == "m1"
    tap = [r for r in plays if r["trigger"] == "tap"]
    assert tap == [{"screen_id": "sign-shoes-01", "zone": "shoes", "item_id": f"tap-{GTIN}",
                    "kind": "spotlight", "playlist_id": None, "trigger": "tap",
                    "started_at": _t(9, 0, 1), "duration_s": 24.0, "gtin": GTIN}]


def test_a_restarted_screen_plays_its_cached_playlist_without_the_edge(player):
    p, _clock, _plays, _f, tmp = player
    again = Player("sign-shoes-01", "shoes", LANDSCAPE, ScreenCache(tmp / "cache"),
                   DiskSink(tmp / "frames2", "sign-shoes-01"), fetch_asset=None,
                   clock=Clock(_t(10)))
    assert again.playlists == p.playlists
    assert again.tick(_t(10)).id == "m1"
    assert again.tick(_t(13)).id == "d1"
    assert again.tick(_t(13, 0, 5)).id == "d2"
    assert again.cache.image(PIC_ID) is not None  # the asset came from the disk cache


def test_new_playlists_replace_the_old_ones_and_drop_unused_assets(player):
    p, _clock, _plays, _f, tmp = player
    doc = _doc(morning_title="Nouveau")
    doc["playlists"][0]["items"].pop()  # the image item is deleted
    p.set_playlists(parse_playlists(doc))
    assert p.tick(_t(9)).title == "Nouveau"
    assert p.tick(_t(13)).id == "d1" and p.tick(_t(13, 0, 6)).id == "d1"
    assert not (tmp / "cache" / "assets" / PIC_ID).exists()
    cached = json.loads((tmp / "cache" / "playlist.json").read_text())
    assert cached["playlists"][1]["items"][0]["title"] == "Nouveau"


def test_bad_commands_are_counted_not_fatal(player):
    p, *_ = player
    p.on_command(SimpleNamespace(cmd="set_playlist", playlists={"playlists": "nope"}))
    p.on_command(SimpleNamespace(cmd="show_product", gtin="123"))
    assert p.counters["bad_commands_total"] == 2
    assert p.tick(_t(9)).id == "m1"


def test_asset_with_wrong_bytes_is_not_cached(tmp_path):
    cache = ScreenCache(tmp_path)
    assert not cache.put_asset(PIC_ID, JPEG + b"x")
    assert not cache.has_asset(PIC_ID) and cache.image(PIC_ID) is None
