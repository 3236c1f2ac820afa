"""Interest attributed to what a zone's screens showed: central's side of proof of play.

Store edges forward each item a public screen showed (``play_event.json``: screen,
zone, item, product, on the edge's clock) and each tap or scan (``interest``, timed
by the edge's receive time). An interest event at time ``T`` in zone ``Z`` of a
store is attributed to every item a screen of ``Z`` showed at some moment of
``[T - N, T]``, ``N`` being ``attribution_window_s`` (30 s by default): the play
started at or before ``T`` and ended at or after ``T - N``. One
``screen_attributions`` row per (interest event, play): the item, whether the
screen showed the very product that was then tapped (``same_product``), and the
lag from the end of the play to the tap (0 while it was still on screen).

The two arrive in any order (a play is sent when the item *leaves* the screen, so
usually after the taps it caused, and the forwarder's lanes send both at once), so
each batch matches its new interest events against the plays already stored and
its new plays against the interest events already stored. Two workers storing the
two halves of a pair at the same moment would each miss the other's uncommitted
row: on PostgreSQL the matching takes a transaction-scoped advisory lock per
(store, zone), exclusive for a batch with plays there, shared for one with only
taps, so a play and a tap of one zone are stored one after the other (the second
sees the first) while batches of taps still run side by side; SQLite writers are
serialised already (``BEGIN IMMEDIATE``). Rows are keyed by the
pair, so a replayed batch adds nothing.

Nothing here names a person: plays have no customer field (the schema forbids
one), and an attribution holds event ids, a zone and an item. The customer comes
in only when a profile is read (:func:`influences`), through the interest event,
which consent and erasure already govern; erasing a customer deletes the
attributions of the events erased with them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from central.db import Tx
from central.events import Event

_PLAY_COLUMNS = ("event_id", "store_id", "zone", "screen_id", "item_id", "item_kind",
                 "playlist_id", "trigger", "gtin", "shown_from", "shown_until")
_ATTRIBUTION_COLUMNS = ("interest_event_id", "play_event_id", "store_id", "zone", "screen_id",
                        "item_id", "item_kind", "trigger", "gtin", "interest_at",
                        "shown_until", "lag_s", "same_product", "window_s", "recorded_at")


def _play_row(ev: Event) -> tuple[Any, ...]:
    p = ev.payload
    return (ev.event_id, ev.store_id, ev.zone, p["device_id"], p["item_id"], p["kind"],
            p.get("playlist_id"), p["trigger"], p.get("gtin"), float(p["shown_from"]),
            float(p["shown_until"]))


def _zone_key(store_id: str | None, zone: str | None) -> tuple[str, str] | None:
    return (store_id, zone) if store_id and zone else None


def _lock_zones(tx: Tx, play_zones: Iterable[tuple[str, str]],
                tap_zones: Iterable[tuple[str, str]]) -> None:
    """Order a zone's play batches against every other batch of that zone (PostgreSQL).

    A batch with plays in a zone takes the zone's advisory lock exclusively, a batch with
    only taps there takes it shared: taps never wait for taps (ingest stays parallel for
    the events that are most of the traffic), while a play and a tap of one zone are
    stored one after the other, so the second sees the first. Zones are locked in
    sorted order, whatever the mode, so two batches cannot deadlock on them.
    """
    exclusive = set(play_zones)
    for store_id, zone in sorted(exclusive | set(tap_zones)):
        tx.lock(f"vitrine-screen-attribution/{store_id}/{zone}",
                shared=(store_id, zone) not in exclusive)


def record(tx: Tx, fresh: Sequence[Event], window_s: float, now: float | None = None) -> int:
    """Store this batch's new plays and attribute; return the attribution rows added.

    ``fresh`` are the events this batch stored for the first time (replays are
    left out by the caller: their pairs exist already).
    """
    now = time.time() if now is None else now
    plays: dict[tuple[str, str], list[Event]] = defaultdict(list)
    taps: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for ev in fresh:
        key = _zone_key(ev.store_id, ev.zone)
        if key is None:
            continue
        if ev.kind == "play":
            plays[key].append(ev)
        elif ev.kind == "interest" and ev.channel == "store":
            taps[key].append(ev)
    if not plays and not taps:
        return 0
    _lock_zones(tx, plays, taps)
    tx.insert_many("screen_plays", _PLAY_COLUMNS,
                   [_play_row(e) for group in plays.values() for e in group],
                   "ON CONFLICT (event_id) DO NOTHING")
    pairs: dict[tuple[str, str], tuple[Any, ...]] = {}

    def pair(tap_id: str, tap_gtin: str | None, at: float, play: Any) -> None:
        if not play["shown_from"] <= at <= play["shown_until"] + window_s:
            return
        pairs[(tap_id, play["event_id"])] = (
            tap_id, play["event_id"], play["store_id"], play["zone"], play["screen_id"],
            play["item_id"], play["item_kind"], play["trigger"], play["gtin"], at,
            play["shown_until"], round(max(0.0, at - play["shown_until"]), 3),
            int(bool(tap_gtin) and tap_gtin == play["gtin"]), float(window_s), now)

    for (store_id, zone), group in taps.items():
        lo = min(e.occurred_at for e in group) - window_s
        hi = max(e.occurred_at for e in group)
        shown = tx.all(f"SELECT {', '.join(_PLAY_COLUMNS)} FROM screen_plays WHERE "
                       "store_id = ? AND zone = ? AND shown_until >= ? AND shown_from <= ?",
                       (store_id, zone, lo, hi))
        for e in group:
            for play in shown:
                pair(e.event_id, e.gtin, e.occurred_at, play)
    for (store_id, zone), group in plays.items():
        lo = min(float(e.payload["shown_from"]) for e in group)
        hi = max(float(e.payload["shown_until"]) for e in group) + window_s
        found = tx.all("SELECT event_id, gtin, occurred_at FROM events WHERE kind = 'interest' "
                       "AND store_id = ? AND zone = ? AND occurred_at >= ? AND occurred_at <= ?",
                       (store_id, zone, lo, hi))
        for e in group:
            play = dict(zip(_PLAY_COLUMNS, _play_row(e), strict=True))
            for tap in found:
                pair(tap["event_id"], tap["gtin"], tap["occurred_at"], play)
    rows = [pairs[k] for k in sorted(pairs)]  # sorted: concurrent inserts lock in one order
    tx.insert_many("screen_attributions", _ATTRIBUTION_COLUMNS, rows,
                   "ON CONFLICT (interest_event_id, play_event_id) DO NOTHING")
    return len(rows)


def influences(tx: Tx, interest_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Interest event id -> what the zone's screens showed before it, latest first."""
    if not interest_ids:
        return {}
    cond, params = tx.member("interest_event_id", list(interest_ids))
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in tx.all("SELECT interest_event_id, screen_id, item_id, item_kind, trigger, gtin, "
                    f"shown_until, lag_s, same_product FROM screen_attributions WHERE {cond} "
                    "ORDER BY interest_event_id, shown_until DESC, play_event_id", params):
        out[r["interest_event_id"]].append({
            "screen_id": r["screen_id"], "item_id": r["item_id"], "kind": r["item_kind"],
            "trigger": r["trigger"], "gtin": r["gtin"], "shown_until": r["shown_until"],
            "lag_s": r["lag_s"], "same_product": bool(r["same_product"])})
    return dict(out)


def forget_events(tx: Tx, branch: str, params: Sequence[Any]) -> None:
    """Delete the attributions of the interest events ``branch`` selects (before erasing them)."""
    tx.execute("DELETE FROM screen_attributions WHERE interest_event_id IN "
               f"(SELECT event_id FROM events WHERE {branch})", params)
