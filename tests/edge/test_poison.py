"""One message must never stop the store (issue: the 2^64 ``ts`` that crash-looped an edge).

Whatever a device sends, at whatever stage it fails (parsing, enrichment, the
deferred bulk inserts at the end of the batch), that message alone is isolated
and the good messages of the same batch are committed. Run on real SQLite, and
end to end against the real Mosquitto with the writer in a process and in a thread.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.topics import device_topic
from edge import pipeline as pipeline_mod
from edge.inbound import Inbound

from .conftest import make_client, query, wait_until
from .test_crash_recovery import start_edge, wait_edge_online
from .test_pipeline_properties import STORE, make_pipeline

GOOD_TEXT = "https://id.gs1.org/01/09506000134352"
QR = f"vitrine/v1/{STORE}/devices/qr-01/qr"
NFC = f"vitrine/v1/{STORE}/devices/nfc-01/nfc"
TEL = f"vitrine/v1/{STORE}/devices/nfc-02/telemetry"
STATE = f"vitrine/v1/{STORE}/devices/cam-01/state"

#: Numbers at every boundary of SQLite's and JSON's types.
BOUNDARY_NUMBERS = [0, 1, 2**31 - 1, 2**31, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1,
                    2**64, 2**100, 10**400 // 10**300, 1e308, 1.7976931348623157e308,
                    5e-324, 1500000000, 1499999999.999, time.time() + 86_400 * 365]


def good(mid: str) -> Inbound:
    body = {"msg_id": mid, "ts": time.time(), "text": GOOD_TEXT}
    return Inbound(0, 1, QR, json.dumps(body).encode(), time.time())


hostile_bodies = st.one_of(
    # Schema-valid messages with hostile values: what passes validation reaches SQLite.
    st.builds(lambda mid, ts: (QR, {"msg_id": mid, "ts": ts, "text": GOOD_TEXT}),
              st.text(min_size=1, max_size=64), st.sampled_from(BOUNDARY_NUMBERS)),
    st.builds(lambda mid, ts, text: (QR, {"msg_id": mid, "ts": ts, "text": text}),
              st.text(min_size=1, max_size=64), st.sampled_from(BOUNDARY_NUMBERS),
              st.text(min_size=1, max_size=4096)),
    st.builds(lambda mid, ts, up, b: (TEL, {"msg_id": mid, "ts": ts, "uptime_s": up,
                                            "buffered": b}),
              st.text(min_size=1, max_size=64), st.sampled_from(BOUNDARY_NUMBERS),
              st.sampled_from(BOUNDARY_NUMBERS), st.sampled_from(
                  [n for n in BOUNDARY_NUMBERS if isinstance(n, int)])),
    st.builds(lambda hb, ts: (STATE, {"state": "online", "heartbeat_s": hb, "ts": ts}),
              st.sampled_from([1, 3600, 0.5]), st.sampled_from(BOUNDARY_NUMBERS)),
    st.builds(lambda mid, uid, ts: (NFC, {"msg_id": mid, "ts": ts, "uid": uid}),
              st.text(min_size=1, max_size=64), st.sampled_from(["04a1b2c3d4e5f6", "deadbeef"]),
              st.sampled_from(BOUNDARY_NUMBERS)),
    # Not schema-valid: deep nesting and huge strings must be rejected, not crash.
    st.builds(lambda n: (TEL, {"msg_id": "d", "ts": 1, "x": ("deep", n)}),
              st.integers(1, 2000)),
    st.builds(lambda n: (QR, {"msg_id": "h" * n, "ts": 1, "text": "x" * n}),
              st.integers(65, 9000)),
)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile=st.lists(hostile_bodies, min_size=1, max_size=8), seed=st.randoms())
def test_good_messages_of_a_batch_commit_whatever_the_others_carry(tmp_path_factory, hostile,
                                                                   seed):
    pipeline = make_pipeline(tmp_path_factory.mktemp("p") / "edge.db")
    items = [good(f"good-{i}") for i in range(4)]
    for topic, body in hostile:
        if isinstance(body.get("x"), tuple):  # built here, as text: too deep for json/repr
            n = body["x"][1]
            payload = b'{"msg_id": "d", "ts": 1, "x": ' + b"[" * n + b"1" + b"]" * n + b"}"
        else:
            payload = json.dumps(body).encode()
        items.append(Inbound(0, 1, topic, payload, time.time()))
    seed.shuffle(items)
    result = pipeline.process_batch(items)
    got = {r[0] for r in pipeline.conn.execute(
        "SELECT msg_id FROM events WHERE device_id = 'qr-01'")}
    assert {f"good-{i}" for i in range(4)} <= got
    c = result.counts
    assert c["state"] + c["accepted"] + c["duplicates"] + c["quarantined"] == len(items)
    # No time that is not a time was stored.
    for (ts,) in pipeline.conn.execute("SELECT device_ts FROM events"):
        assert ts is None or pipeline_mod.MIN_PLAUSIBLE_TS <= ts <= time.time() + 86_400


@pytest.mark.allow_errors
def test_a_value_sqlite_refuses_in_the_final_insert_isolates_that_message(tmp_path,
                                                                           monkeypatch):
    """The class, not the value: if anything lets an unbindable value reach the bulk
    insert (here: the clock check switched off), only its message is set aside."""
    monkeypatch.setattr(pipeline_mod, "plausible_ts", lambda ts, now: True)
    pipeline = make_pipeline(tmp_path / "edge.db")
    poison = Inbound(0, 1, QR, json.dumps({"msg_id": "poison", "ts": 2**64 - 1,
                                           "text": GOOD_TEXT}).encode(), time.time())
    result = pipeline.process_batch([good("a"), poison, good("b")])
    rows = {r[0] for r in pipeline.conn.execute("SELECT msg_id FROM events")}
    assert rows == {"a", "b"}
    assert result.counts["quarantined.internal_error"] == 1
    (reason, detail) = pipeline.conn.execute(
        "SELECT reason, detail FROM quarantine").fetchone()
    assert reason == "internal_error" and "Overflow" in detail
    assert pipeline.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 2


@pytest.mark.allow_errors
def test_a_constraint_failing_at_commit_time_isolates_that_message(tmp_path):
    pipeline = make_pipeline(tmp_path / "edge.db")
    pipeline.conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.msg_id = 'bad'"
        " BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END")
    result = pipeline.process_batch([good("a"), good("bad"), good("b")])
    assert {r[0] for r in pipeline.conn.execute("SELECT msg_id FROM events")} == {"a", "b"}
    assert result.counts["quarantined.internal_error"] == 1


def test_a_sick_database_retries_the_batch_instead_of_quarantining_it(tmp_path):
    """Disk full / read-only is not the message's fault: nothing is quarantined, the
    batch raises (the caller keeps it unacknowledged and retries)."""
    import sqlite3

    pipeline = make_pipeline(tmp_path / "edge.db")
    pipeline.conn.execute("PRAGMA query_only = 1")
    with pytest.raises(sqlite3.OperationalError):
        pipeline.process_batch([good("a"), good("b")])
    pipeline.conn.execute("PRAGMA query_only = 0")
    assert pipeline.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    assert pipeline.process_batch([good("a"), good("b")]).counts["accepted"] == 2


def test_implausible_clocks_are_flagged_counted_and_not_stored_as_times(tmp_path):
    pipeline = make_pipeline(tmp_path / "edge.db")
    items = [Inbound(0, 1, QR, json.dumps({"msg_id": mid, "ts": ts, "text": GOOD_TEXT})
                     .encode(), time.time())
             for mid, ts in [("unset", 2**64 - 1), ("zero", 0), ("future", time.time() + 7e6),
                             ("fine", time.time() - 3)]]
    result = pipeline.process_batch(items)
    assert result.counts["accepted"] == 4
    assert result.counts["implausible_clock"] == 3
    stored = dict(pipeline.conn.execute("SELECT msg_id, device_ts FROM events").fetchall())
    assert stored["unset"] is None and stored["zero"] is None and stored["future"] is None
    assert stored["fine"] == pytest.approx(time.time() - 3, abs=5)
    faults, last = pipeline.conn.execute(
        "SELECT clock_faults, last_bad_ts FROM devices WHERE device_id = 'qr-01'").fetchone()
    assert faults == 3
    assert float(last) > time.time() + 6e6  # the batch's last bad value: the future one
    interest = [json.loads(p) for (p,) in pipeline.conn.execute(
        "SELECT payload FROM outbox WHERE kind = 'interest' ORDER BY seq")]
    assert [e["device_ts"] is None for e in interest] == [True, True, True, False]


@pytest.mark.parametrize("writer_process", ["1", "0"])
def test_an_edge_fed_a_2_64_ts_keeps_storing_everyone_elses_taps(broker, edge_config,
                                                                 tmp_path: Path, monkeypatch,
                                                                 writer_process):
    """End to end: the real edge process, the real Mosquitto, both writer modes."""
    monkeypatch.setenv("VITRINE_WRITER_PROCESS", writer_process)
    db = edge_config.db_path
    t0 = time.time()
    proc = start_edge(edge_config, tmp_path / "edge.log")
    try:
        wait_edge_online(broker, t0)
        c = make_client(broker.port, "qr-01", "qr-01-pw")
        topic = device_topic(broker.store_id, "qr-01", "qr")
        sent = []
        for i in range(30):
            ts = 2**64 - 1 if i % 3 == 0 else time.time()
            body = {"msg_id": f"m{i}", "ts": ts, "text": GOOD_TEXT}
            c.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)
            sent.append(f"m{i}")
        wait_until(lambda: query(db, "SELECT count(*) FROM events")[0][0] == 30, timeout=20)
        assert proc.poll() is None, (tmp_path / "edge.log").read_text()[-2000:]
        rows = query(db, "SELECT msg_id, device_ts FROM events")
        assert sorted(r[0] for r in rows) == sorted(sent)
        assert sum(1 for r in rows if r[1] is None) == 10
        assert query(db, "SELECT clock_faults FROM devices WHERE device_id='qr-01'")[0][0] == 10
        c.disconnect()
        c.loop_stop()
    finally:
        proc.terminate()
        proc.wait(15)
