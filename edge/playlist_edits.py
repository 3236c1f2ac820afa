"""Change the store's playlists one edit at a time, in the format screens already receive.

The store's playlists are one ``vitrine-playlist/1`` document in
``signage_playlists`` (:func:`edge.signage_service.store_playlists`); the
signage runtime notices a new version within a poll and publishes each screen
its retained ``set_playlist``. The panel's editor changes that same document,
so an edit reaches the screens exactly as a loaded file does, and a screen cut
off from the edge keeps resolving the schedule it has.

Every edit is a whole-document replacement guarded three ways:

* optimistic concurrency: the form carries the version it was drawn from, and
  :func:`save` stores only if that is still the stored version (``BEGIN
  IMMEDIATE``, compare, write, ``COMMIT``), so two managers editing at once
  never silently undo each other (:class:`EditConflict`);
* the whole document is validated by :func:`contract.playlists.parse_playlists`
  (the screen's own rules), an invalid edit stores nothing;
* every screen's set must fit in one command (:func:`set_playlist_command`),
  or the change is refused with the screen named, instead of being dropped by
  the runtime later.

A *takeover* (a promotion pushed to a zone for a while) is an ordinary
playlist: top priority, the zone as target, a one-day schedule from now to the
end (:func:`takeover_playlist`). The screens end it by themselves on their own
clock, even offline; expired takeovers are pruned at the next save.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contract.commands import CommandError
from contract.playlists import DAYS, FORMAT, PlaylistError, PlaylistSet, parse_playlists
from contract.topics import valid_id

from .db import immediate
from .signage_service import set_playlist_command, store_playlists

TAKEOVER_PREFIX = "takeover-"
TAKEOVER_PRIORITY = 1000
#: A takeover is for part of a day: longer is a schedule, and a schedule is a playlist.
MAX_TAKEOVER_MIN = 12 * 60


class EditConflict(Exception):
    """The stored playlists changed since the form was drawn; nothing was stored."""


def current(conn: sqlite3.Connection) -> tuple[dict[str, Any], str | None]:
    """The stored document (a fresh empty one when none) and its version."""
    row = conn.execute("SELECT doc, version FROM signage_playlists WHERE id = 1").fetchone()
    if row is None:
        return {"format": FORMAT, "timezone": "UTC", "playlists": []}, None
    doc = json.loads(row[0])
    doc.setdefault("playlists", [])
    return doc, row[1]


def find(doc: dict[str, Any], playlist_id: str) -> dict[str, Any] | None:
    return next((p for p in doc["playlists"] if isinstance(p, dict)
                 and p.get("id") == playlist_id), None)


def takeover_end(playlist: dict[str, Any], tz: ZoneInfo) -> datetime | None:
    """When a takeover playlist stops (``None`` for any other playlist)."""
    if not str(playlist.get("id", "")).startswith(TAKEOVER_PREFIX):
        return None
    sched = playlist.get("schedule") or {}
    try:
        end_day = date.fromisoformat(sched["end_date"])
        hh, mm = (int(x) for x in sched["to"].split(":"))
    except (KeyError, ValueError, AttributeError, TypeError):
        return None
    return datetime(end_day.year, end_day.month, end_day.day, hh, mm, tzinfo=tz)


def prune_expired(doc: dict[str, Any], now: float) -> list[str]:
    """Drop takeovers that have ended; their ids."""
    try:
        tz = ZoneInfo(str(doc.get("timezone", "UTC")))
    except (ValueError, ZoneInfoNotFoundError):
        return []
    at = datetime.fromtimestamp(now, tz)
    gone = [p["id"] for p in doc["playlists"] if isinstance(p, dict)
            and (end := takeover_end(p, tz)) is not None and end <= at]
    doc["playlists"] = [p for p in doc["playlists"] if not isinstance(p, dict)
                        or p.get("id") not in gone]
    return gone


def check_deliverable(playlists: PlaylistSet, screens: list[tuple[str, str | None]],
                      now: float) -> None:
    """:class:`PlaylistError` naming every screen whose set would not fit in a command."""
    problems = []
    for screen, zone in screens:
        try:
            set_playlist_command(screen, playlists.for_screen(screen, zone), now)
        except CommandError as exc:
            problems.append(str(exc))
    if problems:
        raise PlaylistError(problems)


def screens_of(conn: sqlite3.Connection) -> list[tuple[str, str | None]]:
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT device_id, zone FROM devices WHERE kind = 'signage' ORDER BY device_id")]


def save(conn: sqlite3.Connection, doc: dict[str, Any], expected: str | None,
         now: float) -> PlaylistSet:
    """Validate ``doc`` and store it if the stored version is still ``expected``.

    ``conn`` is an autocommit (``isolation_level=None``) read-write connection.
    Raises :class:`PlaylistError` (nothing stored) or :class:`EditConflict`.
    """
    prune_expired(doc, now)
    playlists = parse_playlists(doc)
    check_deliverable(playlists, screens_of(conn), now)
    with immediate(conn):
        row = conn.execute("SELECT version FROM signage_playlists WHERE id = 1").fetchone()
        if (row[0] if row else None) != (expected or None):
            raise EditConflict(row[0] if row else None)
        return store_playlists(conn, json.dumps(doc, ensure_ascii=False))


def takeover_playlist(zone: str, item: dict[str, Any], minutes: int, now: float,
                      tz: ZoneInfo) -> dict[str, Any]:
    """A playlist that takes over ``zone``'s screens from now for ``minutes``.

    One schedule expresses it even across midnight: the start's weekday only, the
    ``from``-``to`` daypart (which may cross midnight), and the dates from the
    start's to the end's, so it is active exactly once.
    """
    if not valid_id(zone):
        raise PlaylistError([f"zone {zone[:40]!r} is not a valid id"])
    if not 1 <= minutes <= MAX_TAKEOVER_MIN:
        raise PlaylistError([f"a takeover lasts 1 to {MAX_TAKEOVER_MIN} minutes"])
    start = datetime.fromtimestamp(now, tz).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=minutes)
    pid = f"{TAKEOVER_PREFIX}{zone}-{start:%Y%m%d%H%M}"[:64]
    return {"id": pid, "priority": TAKEOVER_PRIORITY, "zones": [zone],
            "schedule": {"days": [DAYS[start.weekday()]], "from": f"{start:%H:%M}",
                         "to": f"{end:%H:%M}", "start_date": start.date().isoformat(),
                         "end_date": end.date().isoformat()},
            "items": [item]}
