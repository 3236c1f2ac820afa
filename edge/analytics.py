"""Durable store analytics: hourly interest per zone, shelf and product; device states.

The outbox is a queue: once central has an event, housekeeping may delete it.
What a store manager looks back on (which shelf drew interest last Tuesday,
how long the shoe reader was offline) must outlive that, so each new interest
event is counted into ``interest_hourly`` (one row per hour, zone, shelf and
product) and, with each order's lines, ``product_daily``; each device's
effective state change goes to ``device_state_history``, and each device's latest
heartbeat and proof of play are kept. The pipeline counts its own interest events
in the transaction that commits them (:func:`count_inserted`); the writer's
housekeeping counts the rest (:func:`roll_up`) and does the others, in its
transaction, in whichever process owns the write connection. All are idempotent:
each cursor (``analytics_cursor``) moves in the same transaction as the rows it
counted.

An outbox cleanup must therefore keep rows above :func:`cursor`; everything
at or below it has been counted.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

#: Outbox rows rolled up per housekeeping pass: bounds the time the write lock is held.
CHUNK = 50_000
HOUR = 3600
DAY = 86400


def cursor(conn: sqlite3.Connection, name: str = "interest") -> int:
    """The last outbox ``seq`` already counted (0 when nothing was)."""
    row = conn.execute("SELECT seq FROM analytics_cursor WHERE name = ?", (name,)).fetchone()
    return row[0] if row else 0


def _trunc(value: float, unit: int) -> int:
    """``CAST(value / unit AS INTEGER) * unit``, as SQLite computes it (toward zero)."""
    if type(value) is float:
        return int(value / unit) * unit
    return (value // unit if value >= 0 else -(-value // unit)) * unit


def _sql_value(value: Any) -> Any:
    """What ``coalesce(json_extract(...), '')`` gives for a JSON value."""
    if value is None:
        return ""
    if type(value) is bool:
        return int(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


#: What one interest event adds to: (hour, zone, shelf, gtin, day, is the gtin text).
InterestKey = tuple[int, Any, Any, Any, int, bool]


def interest_key(ev: dict[str, Any]) -> InterestKey | None:
    """Where ``ev`` (an interest event) is counted, exactly as the SQL roll-up would.

    An hour is ``CAST(received_at / 3600 AS INTEGER) * 3600``; zone, shelf and gtin
    default to ''; the product table counts it only when its gtin is a text. None
    when ``received_at`` is not a number (SQL would make a NULL hour: not counted).
    Called for every interest event the pipeline commits: the common shapes (a float
    time, texts or None) take the short way.
    """
    at = ev.get("received_at")
    if type(at) is float:
        if at != at:
            return None
        hour, day = int(at / HOUR) * HOUR, int(at / DAY) * DAY
    elif type(at) is int:
        hour, day = _trunc(at, HOUR), _trunc(at, DAY)
    else:
        return None
    zone, shelf, gtin = ev.get("zone"), ev.get("shelf"), ev.get("gtin")
    is_text = type(gtin) is str
    return (hour, zone if type(zone) is str else _sql_value(zone),
            shelf if type(shelf) is str else _sql_value(shelf),
            gtin if is_text else _sql_value(gtin), day, is_text)


def _add_interest(conn: sqlite3.Connection, keys: Iterable[InterestKey | None]) -> None:
    counted = Counter(keys)  # in C; a batch has a handful of distinct keys
    counted.pop(None, None)
    if not counted:
        return
    hourly: Counter[tuple[int, Any, Any, Any]] = Counter()
    daily: Counter[tuple[int, Any]] = Counter()
    for k, n in counted.items():
        assert k is not None
        hourly[k[:4]] += n
        if k[5]:
            daily[(k[4], k[3])] += n
    conn.executemany(
        "INSERT INTO interest_hourly (hour, zone, shelf, gtin, taps) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (hour, zone, shelf, gtin) DO UPDATE SET taps = taps + excluded.taps",
        [(*k, v) for k, v in hourly.items()])
    if daily:
        conn.executemany(
            "INSERT INTO product_daily (day, gtin, taps) VALUES (?, ?, ?)"
            " ON CONFLICT (day, gtin) DO UPDATE SET taps = taps + excluded.taps",
            [(*k, v) for k, v in daily.items()])


def count_inserted(conn: sqlite3.Connection, keys: Sequence[InterestKey | None],
                   top_before: int | None) -> bool:
    """Count the interest events the caller just inserted, and move the cursor past them.

    The pipeline calls this in its transaction, right after its outbox rows went in
    (all of them: none ignored), with ``top_before`` = ``max(seq)`` before them.
    Only when nothing older awaits :func:`roll_up` (the cursor is at ``top_before``):
    then the rows above the cursor are exactly the caller's, and counting them from
    the event dicts in hand costs ~0.5 µs an event instead of parsing them back out
    of the outbox. Otherwise returns False and :func:`roll_up` counts them later.
    """
    start = cursor(conn)
    if top_before is not None and top_before > start:
        return False
    (top,) = conn.execute("SELECT max(seq) FROM outbox").fetchone()
    if top is None or top <= start:
        return False
    _add_interest(conn, keys)
    conn.execute("INSERT INTO analytics_cursor (name, seq) VALUES ('interest', ?)"
                 " ON CONFLICT (name) DO UPDATE SET seq = excluded.seq", (top,))
    return True


def roll_up(conn: sqlite3.Connection, chunk: int = CHUNK) -> int:
    """Count outbox interest events above the cursor into ``interest_hourly``.

    Call inside the caller's transaction. Returns the number of events counted.

    The pipeline counts its own interest events as it commits them
    (:func:`count_inserted`); this catches up on the rest (orders, rows written
    while older ones awaited counting). Interest rows are parsed in Python, once:
    the same sums in SQL (``json_valid`` and four ``json_extract`` per row, in two
    passes) cost 5.5 µs per event in the writer, ~12 % of ingest
    (docs/benchmarks.md). Keys as :func:`interest_key` says.
    """
    start = cursor(conn)
    (top,) = conn.execute("SELECT max(seq) FROM outbox").fetchone()
    if top is None or top <= start:
        return 0
    end = min(top, start + chunk)
    keys = []
    n = 0
    for (payload,) in conn.execute("SELECT payload FROM outbox WHERE seq > ? AND seq <= ?"
                                   " AND kind = 'interest'", (start, end)):
        n += 1
        try:
            ev = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        if type(ev) is dict:
            keys.append(interest_key(ev))
    _add_interest(conn, keys)
    # Per product and day: taps, and the quantities ordered (kiosk, click & collect: each
    # order's lines, walked with json_each). A few hundred rows a day however busy the
    # store, so "tapped -> ordered" stays cheap to read.
    conn.execute(
        "INSERT INTO product_daily (day, gtin, ordered, orders)"
        " SELECT CAST(json_extract(o.payload, '$.created_at') / ? AS INTEGER) * ?,"
        " json_extract(line.value, '$.gtin'), sum(json_extract(line.value, '$.quantity')),"
        " count(DISTINCT o.seq)"
        " FROM outbox o, json_each(o.payload, '$.lines') AS line"
        " WHERE o.seq > ? AND o.seq <= ? AND o.kind = 'order' AND json_valid(o.payload)"
        " AND json_type(o.payload, '$.lines') = 'array'"
        " AND json_type(line.value, '$.gtin') = 'text'"
        " AND json_type(line.value, '$.quantity') = 'integer'"
        " AND json_type(o.payload, '$.created_at') IN ('integer', 'real')"
        " GROUP BY 1, 2"
        " ON CONFLICT (day, gtin) DO UPDATE SET ordered = ordered + excluded.ordered,"
        " orders = orders + excluded.orders",
        (DAY, DAY, start, end))
    conn.execute("INSERT INTO analytics_cursor (name, seq) VALUES ('interest', ?)"
                 " ON CONFLICT (name) DO UPDATE SET seq = excluded.seq", (end,))
    return n


#: Channels whose latest message per device the panel shows: heartbeats (devices page)
#: and a screen's proof of play (screens page: what it showed last).
LATEST_CHANNELS = ("telemetry", "play")


def record_latest(conn: sqlite3.Connection, chunk: int = CHUNK) -> int:
    """Keep each device's latest message of :data:`LATEST_CHANNELS` in ``device_latest``."""
    start = cursor(conn, "latest")
    (top,) = conn.execute("SELECT max(id) FROM events").fetchone()
    if top is None or top <= start:
        return 0
    end = min(top, start + chunk)
    # SQLite's bare-column rule: with max(), payload comes from the row holding the max.
    cur = conn.execute(
        "INSERT INTO device_latest (device_id, channel, received_at, payload)"
        " SELECT device_id, channel, max(received_at), payload FROM events"
        f" WHERE id > ? AND id <= ? AND channel IN {LATEST_CHANNELS!r}"
        " GROUP BY device_id, channel"
        " ON CONFLICT (device_id, channel) DO UPDATE SET received_at = excluded.received_at,"
        " payload = excluded.payload WHERE excluded.received_at >= received_at",
        (start, end))
    conn.execute("INSERT INTO analytics_cursor (name, seq) VALUES ('latest', ?)"
                 " ON CONFLICT (name) DO UPDATE SET seq = excluded.seq", (end,))
    return cur.rowcount


#: The state a person means: stale and never-seen are not "online".
EFFECTIVE_STATE = ("CASE WHEN last_seen IS NULL THEN 'never_seen' WHEN stale = 1 THEN 'stale'"
                   " WHEN state = 'unknown' THEN 'online' ELSE state END")


def record_states(conn: sqlite3.Connection, now: float) -> int:
    """Append a history row for each device whose effective state changed; return how many."""
    changed = conn.execute(
        f"SELECT device_id, st FROM (SELECT device_id, {EFFECTIVE_STATE} AS st FROM devices)"
        " AS d WHERE st IS NOT (SELECT state FROM device_state_last l"
        " WHERE l.device_id = d.device_id)").fetchall()
    if changed:
        conn.executemany("INSERT INTO device_state_history (device_id, state, at)"
                         " VALUES (?, ?, ?)", [(d, s, now) for d, s in changed])
        conn.executemany("INSERT INTO device_state_last (device_id, state, since)"
                         " VALUES (?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET"
                         " state = excluded.state, since = excluded.since",
                         [(d, s, now) for d, s in changed])
    return len(changed)


def uptime(conn: sqlite3.Connection, since: float, now: float) -> dict[str, float]:
    """Fraction of ``[since, now]`` each device spent online, from its state history.

    Only the part of the window after the device's first recorded state counts.
    """
    out: dict[str, float] = {}
    # The window's own rows, plus each device's last state from before it.
    rows = conn.execute(
        "SELECT device_id, state, at FROM (SELECT device_id, state, at, id"
        " FROM device_state_history WHERE at >= ? UNION ALL SELECT device_id, state, max(at), id"
        " FROM device_state_history WHERE at < ? GROUP BY device_id)"
        " ORDER BY device_id, at, id", (since, since)).fetchall()
    by_device: dict[str, list[tuple[str, float]]] = {}
    for device_id, state, at in rows:
        by_device.setdefault(device_id, []).append((state, at))
    for device_id, history in by_device.items():
        # Over the part of the window the history covers: a device added an hour ago
        # and online since is 100 % up, not 4 %.
        span = max(now - max(since, history[0][1]), 1e-9)
        online = 0.0
        for i, (state, at) in enumerate(history):
            end = history[i + 1][1] if i + 1 < len(history) else now
            lo, hi = max(at, since), min(end, now)
            if state == "online" and hi > lo:
                online += hi - lo
        out[device_id] = round(online / span, 4)
    return out


def also_viewed(conn: sqlite3.Connection, gtins: Sequence[str], *, window: int = 200_000,
                limit: int = 5) -> list[tuple[str, int, int]]:
    """Products other shoppers looked at or bought, among those who looked at ``gtins``.

    ``(gtin, shoppers, buyers)`` best first, from the last ``window`` outbox rows
    (interest events and orders; sessions and loyalty ids are the ``customer_key``):
    the add-on suggestions a salesperson reads. A purchase counts like a look, and
    breaks ties. Computed on demand for one customer, never stored.
    """
    wanted = [g for g in dict.fromkeys(gtins) if g][:50]
    if not wanted:
        return []
    (top,) = conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()
    marks = ",".join("?" * len(wanted))
    rows = conn.execute(
        "WITH recent AS (SELECT customer_key, json_extract(payload, '$.gtin') AS gtin,"
        " 0 AS bought FROM outbox WHERE seq > ? AND kind = 'interest'"
        " UNION ALL SELECT o.customer_key, json_extract(line.value, '$.gtin'), 1"
        " FROM outbox o, json_each(o.payload, '$.lines') AS line WHERE o.seq > ?"
        " AND o.kind = 'order' AND json_valid(o.payload)"
        " AND json_type(o.payload, '$.lines') = 'array'),"
        f" peers AS (SELECT DISTINCT customer_key FROM recent WHERE bought = 0"
        f" AND gtin IN ({marks}))"
        " SELECT gtin, count(DISTINCT customer_key) AS n,"
        " count(DISTINCT CASE WHEN bought = 1 THEN customer_key END) AS b FROM recent"
        f" WHERE customer_key IN peers AND typeof(gtin) = 'text' AND gtin NOT IN ({marks})"
        " GROUP BY gtin ORDER BY n DESC, b DESC, gtin LIMIT ?",
        (top - window, top - window, *wanted, *wanted, limit)).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]
