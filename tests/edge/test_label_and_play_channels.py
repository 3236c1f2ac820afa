"""Pipeline: a label's report is committed with its event; proof of play goes to the outbox only."""

from __future__ import annotations

import json

from edge.catalogue import Catalogue
from edge.db import connect, migrate
from edge.identity import Identifier
from edge.inbound import Inbound
from edge.labels import LabelService, seed_labels
from edge.metrics import Metrics
from edge.pipeline import Pipeline
from edge.registry import Registry
from edge.seed import seed
from edge.sessions import Sessions

from .conftest import LAYOUT, LOYALTY_KEY

STORE = LAYOUT["store_id"]
GTIN = LAYOUT["products"][0]["gtin"]


def _setup(tmp_path):
    layout = json.loads(json.dumps(LAYOUT))
    layout["devices"] += [{"id": "esl-1", "kind": "shelf_label", "zone": None, "gtin": GTIN},
                          {"id": "sign-1", "kind": "signage", "zone": "shoes"}]
    db = connect(tmp_path / "edge.db")
    migrate(db)
    seed(db, layout)
    seed_labels(db.conn, layout)
    pipeline = Pipeline(db, STORE, catalogue=Catalogue(db),
                        identifier=Identifier({"k1": LOYALTY_KEY}),
                        sessions=Sessions(db.conn, 90), registry=Registry(), metrics=Metrics())
    sent = []
    labels = LabelService(db.conn, lambda f, d, p: sent.append(p))
    labels.refresh([GTIN])
    return db, pipeline, sent[0]["hash"]


def _msg(n, device, channel, body):
    return Inbound(n, 1, f"vitrine/v1/{STORE}/devices/{device}/{channel}",
                   json.dumps({"msg_id": f"m{n}", "ts": 1767225600.0, **body}).encode(),
                   1767225601.0)


def test_label_report_is_committed_with_the_event_and_duplicates_do_nothing(tmp_path):
    db, pipeline, wanted = _setup(tmp_path)
    result = pipeline.process_batch([
        _msg(1, "esl-1", "label", {"ok": True, "hash": wanted, "shown_hash": wanted}),
        _msg(1, "esl-1", "label", {"ok": True, "hash": wanted, "shown_hash": wanted})])
    assert result.counts["label_report.current"] == 1 and result.counts["duplicates"] == 1
    row = db.conn.execute("SELECT acked_hash, acked_price_cents FROM shelf_labels").fetchone()
    assert row == (wanted, LAYOUT["products"][0]["price_cents"])
    assert db.conn.execute("SELECT count(*) FROM events WHERE channel = 'label'").fetchone()[0] \
        == 1
    assert result.events == []  # nothing derived, no session opened for a label
    assert db.conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0


def test_refusal_and_bad_report_are_kept_apart(tmp_path):
    db, pipeline, wanted = _setup(tmp_path)
    result = pipeline.process_batch([
        _msg(1, "esl-1", "label", {"ok": False, "hash": wanted, "shown_hash": None,
                                   "error": "content hash does not match the planes"}),
        _msg(2, "esl-1", "label", {"ok": True, "hash": "not-a-hash"})])
    assert result.counts["label_report.refused"] == 1
    assert result.counts["quarantined.schema"] == 1
    assert db.conn.execute("SELECT refused, last_error FROM shelf_labels").fetchone()[0] == 1


def test_proof_of_play_goes_to_the_outbox_without_customer_data(tmp_path):
    db, pipeline, _ = _setup(tmp_path)
    play = {"screen_id": "sign-1", "zone": "shoes", "item_id": f"tap-{GTIN}",
            "kind": "spotlight", "playlist_id": None, "trigger": "tap", "gtin": GTIN,
            "started_at": 1767225590.0, "duration_s": 15.0}
    result = pipeline.process_batch([_msg(1, "sign-1", "play", play),
                                     _msg(2, "sign-1", "play", {**play, "customer_id": "C1"})])
    assert result.counts["play"] == 1 and result.counts["quarantined.schema"] == 1
    kind, payload = db.conn.execute("SELECT kind, payload FROM outbox").fetchone()
    event = json.loads(payload)
    assert kind == "play" and event["type"] == "play" and event["gtin"] == GTIN
    assert event["trigger"] == "tap" and "customer_id" not in event


def test_proof_of_play_is_put_on_the_edges_clock_by_the_screens_heartbeat(tmp_path):
    """Central compares plays with interest events timed by the edge: a screen whose clock
    is 100 s behind is corrected by the offset its (never buffered) heartbeat showed."""
    from contract.validation import validate

    db, pipeline, _ = _setup(tmp_path)
    play = {"screen_id": "sign-1", "zone": "not-its-zone", "item_id": "welcome",
            "kind": "text", "playlist_id": "p1", "trigger": "schedule",
            "started_at": 1767225400.0, "duration_s": 8.0}
    early = Inbound(1, 1, f"vitrine/v1/{STORE}/devices/sign-1/play",
                    json.dumps({"msg_id": "m1", "ts": 1767225408.0, **play}).encode(),
                    1767225508.0)
    beat = Inbound(2, 1, f"vitrine/v1/{STORE}/devices/sign-1/telemetry",
                   json.dumps({"msg_id": "m2", "ts": 1767225500.0}).encode(), 1767225600.0)
    late = Inbound(3, 1, f"vitrine/v1/{STORE}/devices/sign-1/play",
                   json.dumps({"msg_id": "m3", "ts": 1767225700.0, **play}).encode(),
                   1767225900.0)  # buffered: arrives long after, same screen-clock start
    pipeline.process_batch([early])
    pipeline.process_batch([beat, late])
    events = [json.loads(p) for (p,) in db.conn.execute(
        "SELECT payload FROM outbox WHERE kind = 'play' ORDER BY seq")]
    for ev in events:
        validate("play_event", ev)
        assert ev["zone"] == "shoes"  # the registry's zone, not what the screen says
    before, after = events
    assert (before["clock"], before["shown_from"]) == ("screen", 1767225400.0)
    assert (after["clock"], after["shown_from"], after["shown_until"]) == (
        "edge", 1767225500.0, 1767225508.0)
