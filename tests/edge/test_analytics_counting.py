"""Analytics counted at commit time equal what the SQL roll-up counts from the outbox.

The pipeline counts its own interest events into ``interest_hourly`` and
``product_daily`` as it commits them (``edge.analytics.count_inserted``); the
housekeeping roll-up counts the rest (orders, rows written while older ones
awaited counting, rows an ``INSERT OR IGNORE`` dropped). Whatever the order of
batches, orders, duplicates and roll-ups, the tables must hold exactly what the
original SQL roll-up (json_extract over every outbox row, kept here as the
reference) gives. Real SQLite, real pipeline.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import analytics
from edge.catalogue import Catalogue
from edge.db import connect, migrate
from edge.identity import Identifier
from edge.inbound import Inbound
from edge.metrics import Metrics
from edge.pipeline import Pipeline
from edge.registry import Registry
from edge.seed import seed
from edge.sessions import Sessions

from .conftest import GTIN, GTIN_2, LAYOUT, LOYALTY_KEY

STORE = LAYOUT["store_id"]
TAG = LAYOUT["tags"][0]["uid"]

#: The roll-up as it was written in SQL, over the whole outbox: the reference.
REFERENCE_HOURLY = (
    "SELECT CAST(json_extract(payload, '$.received_at') / 3600 AS INTEGER) * 3600,"
    " coalesce(json_extract(payload, '$.zone'), ''),"
    " coalesce(json_extract(payload, '$.shelf'), ''),"
    " coalesce(json_extract(payload, '$.gtin'), ''), count(*)"
    " FROM outbox WHERE kind = 'interest' AND json_valid(payload) GROUP BY 1, 2, 3, 4"
    " ORDER BY 1, 2, 3, 4")
REFERENCE_DAILY = (
    "SELECT CAST(json_extract(payload, '$.received_at') / 86400 AS INTEGER) * 86400,"
    " json_extract(payload, '$.gtin'), count(*) FROM outbox WHERE kind = 'interest'"
    " AND json_valid(payload) AND json_type(payload, '$.gtin') = 'text' GROUP BY 1, 2"
    " ORDER BY 1, 2")


def _pipeline(path: Path) -> Pipeline:
    db = connect(path)
    migrate(db)
    seed(db, LAYOUT)
    return Pipeline(db, STORE, catalogue=Catalogue(db),
                    identifier=Identifier({"k1": LOYALTY_KEY}),
                    sessions=Sessions(db.conn, 90), registry=Registry(), metrics=Metrics())


def _message(n: int, kind: int, at: float) -> Inbound:
    """A tap of the tag, a scan of either product, or a scan with no product."""
    if kind == 0:
        topic, body = "nfc-02/nfc", {"msg_id": f"m{n}", "ts": at, "uid": TAG}
    else:
        text = {1: f"https://id.gs1.org/01/{GTIN}", 2: f"https://id.gs1.org/01/{GTIN_2}",
                3: "just some text"}[kind]
        topic, body = "qr-01/qr", {"msg_id": f"m{n}", "ts": at, "text": text}
    return Inbound(n, 1, f"vitrine/v1/{STORE}/devices/{topic}", json.dumps(body).encode(), at)


def _order(conn, n: int, at: float) -> None:
    o = {"order_id": f"o{n}", "created_at": at, "lines": [{"gtin": GTIN, "quantity": 2}]}
    conn.execute("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at)"
                 " VALUES (?, 'order', 'k', ?, ?)", (o["order_id"], json.dumps(o), at))


def _roll_up(conn) -> None:
    """Housekeeping rounds until the cursor reaches the outbox's top (in small chunks).

    Loop on the cursor, not on roll_up's count: a chunk can hold no interest event at
    all (orders only, or seq numbers an ``INSERT OR IGNORE`` consumed) and later ones
    still wait; housekeeping simply continues at its next round.
    """
    conn.execute("BEGIN IMMEDIATE")
    while analytics.cursor(conn) < (conn.execute("SELECT max(seq) FROM outbox").fetchone()[0]
                                    or 0):
        analytics.roll_up(conn, chunk=7)
    conn.execute("COMMIT")


def _tables(conn):
    hourly = conn.execute("SELECT CAST(hour AS INTEGER), zone, shelf, gtin, taps FROM"
                          " interest_hourly WHERE taps > 0 ORDER BY 1, 2, 3, 4").fetchall()
    daily = conn.execute("SELECT CAST(day AS INTEGER), gtin, taps FROM product_daily"
                         " WHERE taps > 0 ORDER BY 1, 2").fetchall()
    return hourly, daily


steps = st.lists(st.one_of(
    # a batch of messages: (kind, hours after the start) each
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30)), min_size=1, max_size=6),
    st.just("order"), st.just("roll_up"), st.just("forget"), st.just("replay")),
    min_size=1, max_size=12)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_counted_at_commit_equals_the_sql_roll_up(tmp_path_factory, plan):
    pipe = _pipeline(tmp_path_factory.mktemp("a") / "edge.db")
    conn = pipe.conn
    t0 = 1_790_000_000.0
    n = 0
    last: list[Inbound] = []
    for step in plan:
        if step == "order":
            _order(conn, n, t0)
            n += 1
        elif step == "roll_up":
            _roll_up(conn)
        elif step == "forget":
            pipe.recent = type(pipe.recent)()  # the dedupe window lost: UNIQUE ignores rows
        elif step == "replay":
            if last:
                pipe.process_batch(last)  # redelivered after a crash
        else:
            last = []
            for kind, hours in step:
                last.append(_message(n, kind, t0 + hours * 3600 + n))
                n += 1
            pipe.process_batch(last)
    _roll_up(conn)
    hourly, daily = _tables(conn)
    assert hourly == conn.execute(REFERENCE_HOURLY).fetchall()
    assert daily == conn.execute(REFERENCE_DAILY).fetchall()
    (orders,) = conn.execute("SELECT coalesce(sum(ordered), 0) FROM product_daily").fetchone()
    assert orders == 2 * conn.execute("SELECT count(*) FROM outbox WHERE kind = 'order'"
                                      ).fetchone()[0]
    conn.close()


def test_the_pipeline_counts_its_own_events_without_the_roll_up(tmp_path):
    pipe = _pipeline(tmp_path / "edge.db")
    now = time.time()
    pipe.process_batch([_message(i, i % 3, now) for i in range(30)])
    conn = pipe.conn
    # Counted and the cursor past them at commit: the roll-up finds nothing left.
    conn.execute("BEGIN IMMEDIATE")
    assert analytics.roll_up(conn) == 0
    conn.execute("COMMIT")
    assert _tables(conn)[0] == conn.execute(REFERENCE_HOURLY).fetchall()
    assert sum(r[-1] for r in _tables(conn)[0]) == 30
    # An order waiting for the roll-up: the next batch leaves its events to it too.
    _order(conn, 99, now)
    pipe.process_batch([_message(100 + i, 1, now) for i in range(5)])
    assert sum(r[-1] for r in _tables(conn)[0]) == 30
    _roll_up(conn)
    assert sum(r[-1] for r in _tables(conn)[0]) == 35
    assert _tables(conn)[1] == conn.execute(REFERENCE_DAILY).fetchall()
