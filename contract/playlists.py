"""Signage playlists and schedules: the file format and the rule that picks what plays.

A store's playlists are one JSON file (``vitrine-playlist/1``), loaded by the
edge (``vitrine signage playlist load``) and delivered to each screen with
every playlist that may ever apply to it, schedules included: the screen
resolves the schedule itself, from its own clock, so a screen cut off from the
edge overnight still switches from the morning playlist to the evening one.

```json
{"format": "vitrine-playlist/1", "timezone": "Europe/Paris",
 "playlists": [
   {"id": "morning", "priority": 10, "screens": ["sign-entrance-01"], "zones": ["shoes"],
    "schedule": {"days": ["mon", "tue"], "from": "08:00", "to": "12:00",
                 "start_date": "2026-06-01", "end_date": "2026-06-30"},
    "items": [{"kind": "text", "id": "hello", "title": "Bonjour"}]},
   {"id": "default", "default": true, "zones": ["*"], "items": [...]}]}
```

Which playlist plays on screen S (zone Z) at time t (:func:`resolve`):

1. candidates are the playlists that target S (``screens``), Z (``zones``) or
   every zone (``"*"``);
2. among them, the non-default ones whose schedule is active at t (all of
   ``days``, the ``from``-``to`` daypart, which may cross midnight, and the
   inclusive date range, in the file's ``timezone``) win by highest
   ``priority``, then by the most specific target (screen, zone, ``*``), then
   by id, so the choice never depends on file order;
3. if none is active, the most specific ``default`` playlist plays; with no
   default the screen shows nothing planned (a black frame with the store's
   name is the player's business, not the schedule's).

Items are validated with ``contract.screen_items`` when the file is loaded:
an invalid item refuses the whole file (with every problem listed), since
half a playlist on a public screen is worse than yesterday's.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .screen_items import Item, ItemError, item_to_dict, parse_item
from .topics import valid_id

FORMAT = "vitrine-playlist/1"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
MAX_ITEMS = 200


class PlaylistError(ValueError):
    """A playlist file that does not load; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems[:10]))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Schedule:
    days: tuple[int, ...] = tuple(range(7))
    start: dtime | None = None
    end: dtime | None = None
    start_date: date | None = None
    end_date: date | None = None

    def active(self, local: datetime) -> bool:
        if self.start_date and local.date() < self.start_date:
            return False
        if self.end_date and local.date() > self.end_date:
            return False
        if self.start is None or self.end is None:
            return local.weekday() in self.days
        now = local.time()
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= now < self.end
        # crosses midnight: the part after midnight belongs to the previous day's slot
        if now >= self.start:
            return local.weekday() in self.days
        return now < self.end and (local.weekday() - 1) % 7 in self.days


@dataclass(frozen=True, slots=True)
class Playlist:
    id: str
    items: tuple[Item, ...]
    priority: int = 0
    default: bool = False
    screens: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    schedule: Schedule = Schedule()

    def specificity(self, screen: str, zone: str | None) -> int:
        """2: names the screen, 1: its zone, 0: every zone, -1: not for this screen."""
        if screen in self.screens:
            return 2
        if zone is not None and zone in self.zones:
            return 1
        return 0 if "*" in self.zones else -1


@dataclass(frozen=True, slots=True)
class PlaylistSet:
    timezone: str
    playlists: tuple[Playlist, ...]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def for_screen(self, screen: str, zone: str | None) -> PlaylistSet:
        """Only what can ever play on this screen: what the edge delivers to it."""
        return PlaylistSet(self.timezone, tuple(
            p for p in self.playlists if p.specificity(screen, zone) >= 0))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "timezone": self.timezone,
                "playlists": [_playlist_to_dict(p) for p in self.playlists]}

    @property
    def version(self) -> str:
        """Hash of the canonical JSON: a screen knows whether what it caches is current."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def asset_ids(self) -> set[str]:
        return {i.image for p in self.playlists for i in p.items
                if getattr(i, "image", None)}


def resolve(playlists: PlaylistSet, screen: str, zone: str | None,
            at: float) -> Playlist | None:
    """The playlist that plays on ``screen`` at epoch ``at`` (rule in the module doc)."""
    local = datetime.fromtimestamp(at, playlists.tz)
    best: tuple[Any, ...] | None = None
    fallback: tuple[Any, ...] | None = None
    for p in playlists.playlists:
        spec = p.specificity(screen, zone)
        if spec < 0:
            continue
        if p.default:
            key = (spec, p.priority, p.id)
            if fallback is None or key > fallback[0]:
                fallback = (key, p)
        elif p.schedule.active(local):
            key = (p.priority, spec, p.id)
            if best is None or key > best[0]:
                best = (key, p)
    if best is not None:
        return best[1]
    return fallback[1] if fallback is not None else None


def _schedule_to_dict(s: Schedule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.days != tuple(range(7)):
        out["days"] = [DAYS[d] for d in s.days]
    if s.start is not None and s.end is not None:
        out["from"], out["to"] = s.start.strftime("%H:%M"), s.end.strftime("%H:%M")
    if s.start_date:
        out["start_date"] = s.start_date.isoformat()
    if s.end_date:
        out["end_date"] = s.end_date.isoformat()
    return out


def _playlist_to_dict(p: Playlist) -> dict[str, Any]:
    out: dict[str, Any] = {"id": p.id, "priority": p.priority,
                           "items": [item_to_dict(i) for i in p.items]}
    if p.default:
        out["default"] = True
    if p.screens:
        out["screens"] = list(p.screens)
    if p.zones:
        out["zones"] = list(p.zones)
    sched = _schedule_to_dict(p.schedule)
    if sched:
        out["schedule"] = sched
    return out


def _parse_schedule(raw: Any, where: str, problems: list[str]) -> Schedule:
    if raw is None:
        return Schedule()
    if not isinstance(raw, dict):
        problems.append(f"{where}: schedule must be an object")
        return Schedule()
    unknown = set(raw) - {"days", "from", "to", "start_date", "end_date"}
    if unknown:
        problems.append(f"{where}: unknown schedule fields {sorted(unknown)}")
    days: tuple[int, ...] = tuple(range(7))
    if "days" in raw:
        if (not isinstance(raw["days"], list) or not raw["days"]
                or not all(isinstance(d, str) and d in DAYS for d in raw["days"])):
            problems.append(f"{where}: days must be a non-empty list of {', '.join(DAYS)}")
        else:
            days = tuple(sorted({DAYS.index(d) for d in raw["days"]}))
    start = end = None
    if ("from" in raw) != ("to" in raw):
        problems.append(f"{where}: from and to go together")
    elif "from" in raw:
        if not all(isinstance(raw[k], str) and _HHMM.match(raw[k]) for k in ("from", "to")):
            problems.append(f"{where}: from/to must be HH:MM")
        elif raw["from"] == raw["to"]:
            problems.append(f"{where}: from and to are equal (an empty daypart)")
        else:
            start, end = dtime.fromisoformat(raw["from"]), dtime.fromisoformat(raw["to"])
    dates: list[date | None] = []
    for key in ("start_date", "end_date"):
        value = raw.get(key)
        if value is None:
            dates.append(None)
            continue
        try:
            if not isinstance(value, str):
                raise ValueError
            dates.append(date.fromisoformat(value))
        except ValueError:
            problems.append(f"{where}: {key} must be YYYY-MM-DD")
            dates.append(None)
    if dates[0] and dates[1] and dates[0] > dates[1]:
        problems.append(f"{where}: start_date is after end_date")
    return Schedule(days, start, end, dates[0], dates[1])


def _ids(raw: Any, key: str, where: str, problems: list[str], star: bool) -> tuple[str, ...]:
    values = raw.get(key, [])
    if not isinstance(values, list) or not all(
            isinstance(v, str) and (valid_id(v) or (star and v == "*")) for v in values):
        problems.append(f"{where}: {key} must be a list of ids")
        return ()
    return tuple(values)


def parse_playlists(data: Any) -> PlaylistSet:
    """Validate a ``vitrine-playlist/1`` document; :class:`PlaylistError` lists all problems."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise PlaylistError(["playlist file must be a JSON object"])
    if data.get("format", FORMAT) != FORMAT:
        problems.append(f"format must be {FORMAT!r}")
    unknown = set(data) - {"format", "timezone", "playlists"}
    if unknown:
        problems.append(f"unknown top-level fields {sorted(unknown)}")
    tz = data.get("timezone", "UTC")
    try:
        if not isinstance(tz, str):
            raise ValueError
        ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError):
        problems.append(f"unknown timezone {str(tz)[:60]!r}")
        tz = "UTC"
    raw_lists = data.get("playlists")
    if not isinstance(raw_lists, list):
        raise PlaylistError([*problems, "playlists must be a list"])
    out: list[Playlist] = []
    seen: set[str] = set()
    for n, raw in enumerate(raw_lists):
        where = f"playlists[{n}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be an object")
            continue
        pid = raw.get("id")
        if not isinstance(pid, str) or not valid_id(pid):
            problems.append(f"{where}: id must be a valid id")
            pid = f"#{n}"
        elif pid in seen:
            problems.append(f"{where}: duplicate id {pid!r}")
        seen.add(pid)
        where = f"playlist {pid}"
        extra = set(raw) - {"id", "priority", "default", "screens", "zones", "schedule",
                            "items"}
        if extra:
            problems.append(f"{where}: unknown fields {sorted(extra)}")
        priority = raw.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or \
                not -1000 <= priority <= 1000:
            problems.append(f"{where}: priority must be an integer from -1000 to 1000")
            priority = 0
        default = raw.get("default", False)
        if not isinstance(default, bool):
            problems.append(f"{where}: default must be true or false")
            default = False
        screens = _ids(raw, "screens", where, problems, star=False)
        zones = _ids(raw, "zones", where, problems, star=True)
        if not screens and not zones:
            problems.append(f"{where}: targets nothing (give screens or zones)")
        schedule = _parse_schedule(raw.get("schedule"), where, problems)
        if default and raw.get("schedule") is not None:
            problems.append(f"{where}: a default playlist has no schedule")
        items_raw = raw.get("items")
        items: list[Item] = []
        if not isinstance(items_raw, list) or not 0 < len(items_raw) <= MAX_ITEMS:
            problems.append(f"{where}: items must be a list of 1 to {MAX_ITEMS} items")
            items_raw = []
        item_ids: set[str] = set()
        for k, item in enumerate(items_raw):
            try:
                parsed = parse_item(item)
            except ItemError as exc:
                problems.append(f"{where}: item {k}: {exc}")
                continue
            if parsed.id in item_ids:
                problems.append(f"{where}: item {k}: duplicate item id {parsed.id!r}")
            item_ids.add(parsed.id)
            items.append(parsed)
        out.append(Playlist(pid, tuple(items), priority, default, screens, zones, schedule))
    if problems:
        raise PlaylistError(problems)
    return PlaylistSet(tz, tuple(out))


def load_playlists(text: str | bytes) -> PlaylistSet:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PlaylistError([f"not JSON: {exc}"]) from None
    return parse_playlists(data)
