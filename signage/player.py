"""The screen player: what to show now, rendering it, and saying what was shown.

:class:`Player` is the screen's logic without a network or a window, so tests
drive it directly and the same object runs under ``vitrine signage play``:

* :meth:`Player.on_command` takes the edge's commands (typed by the device
  kit): ``show_product`` starts or extends the spotlight, ``set_playlist``
  replaces the cached playlists;
* :meth:`Player.tick` decides what is on screen at ``now``: the spotlight
  while it lasts (``hold_s`` after the latest tap of its product), else the
  playlist the schedule picks (``contract.playlists.resolve``), rotating its
  items by their ``duration_s``; when that changes it renders the item
  (``signage.render``), hands the frame to the sink (window or disk) and
  reports proof of play for what just ended;
* proof of play: one record per item shown (screen, item, kind, GTIN for a
  spotlight, start, duration, trigger ``schedule`` or ``tap``), handed to
  ``report`` (the device session's ``publish_json("play", ...)``, buffered
  while offline).

Rendered frames are memoised per (item, profile) for the playlist's items,
since a playlist repeats all day; spotlights are rendered when they arrive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from contract.playlists import Playlist, PlaylistError, PlaylistSet, parse_playlists, resolve
from contract.screen_items import Item, ItemError, Spotlight, Text, parse_item

from .cache import ScreenCache
from .profiles import Profile
from .render import render

log = logging.getLogger("vitrine.signage.player")

DEFAULT_HOLD_S = 15.0
#: Shown when nothing is planned for this screen (no playlist, empty schedule).
IDLE = Text(id="idle", title="", body="")


class FrameSink(Protocol):
    def show(self, image: Image.Image, item: Item, trigger: str) -> None: ...


@dataclass(slots=True)
class _OnScreen:
    item: Item
    trigger: str
    started_at: float
    playlist_id: str | None


@dataclass
class Player:
    screen_id: str
    zone: str | None
    profile: Profile
    cache: ScreenCache
    sink: FrameSink
    report: Callable[[dict[str, Any]], None] = lambda record: None
    fetch_asset: Callable[[str], bytes | None] | None = None
    hold_s: float = DEFAULT_HOLD_S
    clock: Callable[[], float] = time.time
    playlists: PlaylistSet | None = None
    counters: dict[str, int] = field(default_factory=lambda: {
        "frames_total": 0, "spotlights_total": 0, "playlists_total": 0,
        "bad_commands_total": 0, "plays_reported_total": 0, "assets_fetched_total": 0,
        "assets_missing_total": 0})
    _spot: Spotlight | None = None
    _spot_until: float = 0.0
    _on: _OnScreen | None = None
    _rotation: dict[str, tuple[int, float]] = field(default_factory=dict)
    _frames: dict[tuple[str, str], Image.Image] = field(default_factory=dict)
    #: Commands arrive on the session's network thread, ticks on the display's thread.
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        if self.playlists is None:
            self.playlists = self.cache.load_playlists()
            if self.playlists is not None:
                log.info("%s: playing cached playlists (version %s)", self.screen_id,
                         self.playlists.version)

    # -- commands ------------------------------------------------------------------------

    def on_command(self, cmd: Any) -> None:
        """Handle one command from the edge (runs on the session's network thread)."""
        kind = getattr(cmd, "cmd", None)
        try:
            if kind == "show_product":
                with self._lock:
                    self._show_product(cmd)
                    # Render now, on the session's thread: the shopper is looking at
                    # the screen, the next tick may be 50 ms away.
                    self._tick(self.clock())
            elif kind == "set_playlist":
                self.set_playlists(parse_playlists(cmd.playlists))
            else:
                return
        except (ItemError, PlaylistError) as exc:
            self.counters["bad_commands_total"] += 1
            log.warning("%s: %s command refused: %s", self.screen_id, kind, exc)

    def _show_product(self, cmd: Any) -> None:
        data = {"kind": "spotlight", "id": f"tap-{cmd.gtin}", "gtin": cmd.gtin,
                "duration_s": self.hold_s}
        for name in ("name", "brand", "price_cents", "currency", "promo", "was_price_cents",
                     "image", "stock", "online"):
            value = getattr(cmd, name, None)
            if value is not None:
                data[name] = value
        item = parse_item(data)
        now = self.clock()
        self._spot_until = now + self.hold_s
        if item != self._spot:
            self._spot = item
            self.counters["spotlights_total"] += 1
        if item.image:
            self._ensure_assets({item.image})

    def set_playlists(self, playlists: PlaylistSet) -> None:
        if self.playlists is not None and playlists.version == self.playlists.version:
            return
        self._ensure_assets(playlists.asset_ids())  # network: outside the lock
        with self._lock:
            self.cache.save_playlists(playlists)
            self.playlists = playlists
            self._frames.clear()
            self._rotation.clear()
            self.counters["playlists_total"] += 1
        log.info("%s: new playlists (version %s, %d playlist(s))", self.screen_id,
                 playlists.version, len(playlists.playlists))

    def _ensure_assets(self, asset_ids: set[str]) -> None:
        for asset_id in sorted(asset_ids):
            if self.cache.has_asset(asset_id):
                continue
            data = self.fetch_asset(asset_id) if self.fetch_asset else None
            if data is not None and self.cache.put_asset(asset_id, data):
                self.counters["assets_fetched_total"] += 1
            else:
                self.counters["assets_missing_total"] += 1
                log.warning("%s: asset %s unavailable; a placeholder is shown", self.screen_id,
                            asset_id[:12])

    # -- what plays ----------------------------------------------------------------------

    def _planned(self, now: float) -> tuple[Item, Playlist | None]:
        playlist = resolve(self.playlists, self.screen_id, self.zone, now) \
            if self.playlists else None
        if playlist is None or not playlist.items:
            return IDLE, None
        index, since = self._rotation.get(playlist.id, (0, now))
        index %= len(playlist.items)
        while now - since >= playlist.items[index].duration_s:
            since += playlist.items[index].duration_s
            index = (index + 1) % len(playlist.items)
            if now - since > 86_400:  # back from a long sleep: restart the rotation
                since = now
        self._rotation[playlist.id] = (index, since)
        return playlist.items[index], playlist

    def tick(self, now: float | None = None) -> Item:
        """Put on screen what belongs there at ``now``; returns that item."""
        with self._lock:
            return self._tick(self.clock() if now is None else now)

    def _tick(self, now: float) -> Item:
        if self._spot is not None and now < self._spot_until:
            item, trigger, playlist = self._spot, "tap", None
        else:
            if self._spot is not None:
                self._spot = None
                # back to the playlist where it was: restart the current item's clock
                for pid, (index, _since) in self._rotation.items():
                    self._rotation[pid] = (index, now)
            item, playlist = self._planned(now)
            trigger = "schedule"
        if self._on is not None and self._on.item == item and self._on.trigger == trigger:
            return item
        self._finish(now)
        self._on = _OnScreen(item, trigger, now, playlist.id if playlist else None)
        self._show(item, trigger)
        return item

    def _show(self, item: Item, trigger: str) -> None:
        key = (item.id, item.kind)
        frame = self._frames.get(key) if trigger == "schedule" else None
        if frame is None:
            frame = render(item, self.profile, self.cache.image)
            if trigger == "schedule":
                self._frames[key] = frame
        self.sink.show(frame, item, trigger)
        self.counters["frames_total"] += 1

    def _finish(self, now: float) -> None:
        on = self._on
        if on is None or on.item is IDLE:
            return
        record: dict[str, Any] = {
            "screen_id": self.screen_id, "zone": self.zone, "item_id": on.item.id,
            "kind": on.item.kind, "playlist_id": on.playlist_id, "trigger": on.trigger,
            "started_at": round(on.started_at, 3),
            "duration_s": round(max(0.0, now - on.started_at), 3)}
        if isinstance(on.item, Spotlight):
            record["gtin"] = on.item.gtin
        try:
            self.report(record)
            self.counters["plays_reported_total"] += 1
        except Exception:  # a full buffer must not stop the screen
            log.exception("%s: proof of play not recorded", self.screen_id)

    def close(self) -> None:
        """Report the item on screen as ended (clean shutdown)."""
        with self._lock:
            self._finish(self.clock())
            self._on = None
