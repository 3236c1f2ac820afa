"""Property tests: the pipeline survives anything a device can send, and loses nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.topics import DEVICE_CHANNELS
from edge.catalogue import Catalogue
from edge.db import connect, migrate
from edge.identity import Identifier
from edge.inbound import Inbound
from edge.metrics import Metrics
from edge.pipeline import Pipeline
from edge.registry import Registry
from edge.seed import seed
from edge.sessions import Sessions

from .conftest import LAYOUT, LOYALTY_KEY

STORE = LAYOUT["store_id"]
DEVICES = [d["id"] for d in LAYOUT["devices"]] + ["intruder"]


def make_pipeline(path: Path) -> Pipeline:
    db = connect(path)
    migrate(db)
    seed(db, LAYOUT)
    return Pipeline(db, STORE, catalogue=Catalogue(db),
                    identifier=Identifier({"k1": LOYALTY_KEY}),
                    sessions=Sessions(db.conn, 90), registry=Registry(), metrics=Metrics())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)

plausible = st.fixed_dictionaries(
    {"msg_id": st.text(min_size=1, max_size=10), "ts": st.floats(0, 2e9)},
    optional={"uid": st.text(alphabet="0123456789abcdefXYZ", max_size=22),
              "ndef": st.none() | st.text(max_size=40) | st.binary(max_size=30).map(
                  lambda b: __import__("base64").b64encode(b).decode()),
              "text": st.text(max_size=60) | st.sampled_from([
                  "https://id.gs1.org/01/09506000134352", "]Q1vt1.abc.def", "]E04006381333931",
                  "(01)09506000134353", "https://x.example/01/123"]),
              "state": st.sampled_from(["online", "offline", "zombie"]),
              "format": st.sampled_from(["png", "gif"]), "image": st.text(max_size=20)})

payloads = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                     plausible.map(lambda v: json.dumps(v).encode()))
topics = st.one_of(
    st.tuples(st.sampled_from(DEVICES), st.sampled_from(DEVICE_CHANNELS)).map(
        lambda t: f"vitrine/v1/{STORE}/devices/{t[0]}/{t[1]}"),
    st.text(max_size=60))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(topics, payloads), min_size=1, max_size=20))
def test_hostile_batches_never_crash_and_every_message_is_accounted_for(tmp_path_factory, batch):
    pipeline = make_pipeline(tmp_path_factory.mktemp("p") / "edge.db")
    items = [Inbound(i, 1, t, p, time.time()) for i, (t, p) in enumerate(batch)]
    result = pipeline.process_batch(items)
    c = result.counts
    # Every message is exactly one of: state update, accepted, duplicate, quarantined.
    assert c["state"] + c["accepted"] + c["duplicates"] + c["quarantined"] - sum(
        v for k, v in c.items() if k.startswith("quarantined.token_")) == len(items)
    assert c.get("quarantined.internal_error", 0) == 0
    conn = pipeline.conn
    (n_events,) = conn.execute("SELECT count(*) FROM events").fetchone()
    assert n_events == c["accepted"]
    (n_q,) = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    assert n_q == c["quarantined"]
    # The same batch again is all duplicates or quarantined again: nothing new accepted.
    again = pipeline.process_batch(items)
    assert again.counts["accepted"] == 0
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == n_events


@pytest.mark.allow_errors
def test_a_bug_on_one_message_quarantines_it_alone(tmp_path, monkeypatch):
    pipeline = make_pipeline(tmp_path / "edge.db")
    real = pipeline._derive

    def buggy(device_id, channel, msg, contents, now, device_ts, result):
        if msg["msg_id"] == "boom":
            raise KeyError("simulated bug")
        return real(device_id, channel, msg, contents, now, device_ts, result)

    monkeypatch.setattr(pipeline, "_derive", buggy)
    topic = f"vitrine/v1/{STORE}/devices/qr-01/qr"
    items = [Inbound(i, 1, topic, json.dumps(
        {"msg_id": mid, "ts": 1.0, "text": "https://id.gs1.org/01/09506000134352"}).encode(),
        time.time()) for i, mid in enumerate(["a", "boom", "b"])]
    result = pipeline.process_batch(items)
    assert result.counts["accepted"] == 2
    assert result.counts["quarantined.internal_error"] == 1
    rows = pipeline.conn.execute("SELECT msg_id FROM events ORDER BY msg_id").fetchall()
    assert rows == [("a",), ("b",)]
    assert pipeline.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 2


def test_duplicates_older_than_the_window_are_still_caught_by_the_database(tmp_path):
    pipeline = make_pipeline(tmp_path / "edge.db")
    pipeline.recent.capacity = 2  # a tiny window, to reach beyond it
    topic = f"vitrine/v1/{STORE}/devices/qr-01/qr"

    def item(mid: str) -> Inbound:
        body = {"msg_id": mid, "ts": 1.0, "text": "https://id.gs1.org/01/09506000134352"}
        return Inbound(0, 1, topic, json.dumps(body).encode(), time.time())

    for mid in ["m1", "m2", "m3", "m4"]:
        pipeline.process_batch([item(mid)])
    assert ("qr-01", "m1") not in pipeline.recent and ("qr-01", "m4") in pipeline.recent
    again = pipeline.process_batch([item("m1"), item("m4"), item("m5")])
    assert again.counts["duplicates"] == 2
    assert again.counts["duplicates_beyond_window"] == 1
    assert again.counts["accepted"] == 1
    conn = pipeline.conn
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 5
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 5  # ids deterministic


def test_the_window_is_reloaded_from_committed_events(tmp_path):
    first = make_pipeline(tmp_path / "edge.db")
    topic = f"vitrine/v1/{STORE}/devices/qr-01/qr"
    body = json.dumps({"msg_id": "x", "ts": 1.0, "text": "09506000134352"}).encode()
    first.process_batch([Inbound(0, 1, topic, body, time.time())])
    second = make_pipeline(tmp_path / "edge.db")  # a restart
    assert ("qr-01", "x") in second.recent
    assert second.process_batch([Inbound(0, 1, topic, body, time.time())]).counts[
        "duplicates"] == 1
