"""Erasure within seconds: central's push bridge nudges an online edge over the real broker."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.credentials import issue
from central.erasure_push import ErasureBridge
from central.stock_push import BrokerTarget, StockPublisher
from contract.erasure_push import (
    ErasureMessageError,
    erasure_message,
    parse_erasure_message,
    sync_erasures_topic,
)
from contract.loyalty import issue_token
from contract.stock_push import sync_stock_topic
from edge.node import EdgeNode
from tests.central.conftest import grant, make_central, presence
from tests.central.test_stock_push import BridgeProcess
from tests.edge.conftest import GTIN, GTIN_2, LOYALTY_KEY, make_client, query, wait_until


def app_scan(customer: str, gtin: str) -> dict[str, str]:
    token = issue_token(LOYALTY_KEY, customer, kind="app", now=time.time(), ttl_s=120, gtin=gtin)
    return {"text": "]Q1" + token}


def test_an_online_edge_applies_an_erasure_within_five_seconds(
        broker, edge_config, device, tmp_path: Path) -> None:
    broker.add_many([("sync-bridge", "edge")])
    store = broker.store_id
    central = make_central({"sqlite_path": str(tmp_path / "central.db")})
    token = issue(central.db, "store", store)
    for c in ("C0000001", "C0000002"):
        grant(central, c)
    # The pull alone would come only after 5 minutes: whatever is faster is the push.
    cfg = dataclasses.replace(edge_config, central_url=central.url, store_token=token,
                              sync_erasures_s=300.0)
    node = EdgeNode(cfg).start()
    publisher = StockPublisher(BrokerTarget("127.0.0.1", broker.port, "sync-bridge",
                                            "sync-bridge-pw"), sync_stock_topic(store))
    topic = sync_erasures_topic(store)
    bridge = ErasureBridge(central.db, store, lambda p: publisher.publish(p, topic),
                           interval_s=0.1)
    thread = threading.Thread(target=bridge.run, daemon=True)
    try:
        assert publisher.connected.wait(5) and node.sync.push_ready.wait(5)
        thread.start()
        qr, nfc = device("qr-01"), device("nfc-02")
        mine = qr.send("qr", app_scan("C0000001", GTIN_2))
        theirs = qr.send("qr", app_scan("C0000002", GTIN))
        anonymous = nfc.send("nfc", {"uid": "04a1b2c3d4e5f6"})
        wait_until(lambda: query(cfg.db_path, "SELECT count(*) FROM outbox WHERE sent_at "
                                              "IS NOT NULL")[0][0] == 5, timeout=15)
        # The edge's start-up pull is done: the next one is 5 minutes away.
        wait_until(lambda: query(cfg.db_path, "SELECT last_success_at FROM sync_state WHERE "
                                              "feed = 'erasures'"), timeout=10)
        assert central.profile("C0000001")["timeline"]

        started = time.monotonic()
        status, body = central.api("DELETE", "/api/v1/customers/C0000001")
        assert status == 202, body
        wait_until(lambda: query(cfg.db_path, "SELECT count(*) FROM erasures_applied")[0][0],
                   timeout=5)
        elapsed = time.monotonic() - started
        assert elapsed < 5.0
        raw = set(query(cfg.db_path, "SELECT device_id, msg_id FROM events"))
        assert ("qr-01", mine) not in raw
        assert {("qr-01", theirs), ("nfc-02", anonymous)} <= raw
        left = [json.loads(r[0]) for r in query(cfg.db_path, "SELECT payload FROM outbox")]
        assert {e.get("customer_id") for e in left} == {"C0000002", None}
        assert node.sync.metrics()["erasure_pushes_total"] >= 1
        assert bridge.counters["messages_total"] == 1
        # Central too removed exactly that customer's: the other member's and the
        # anonymous shopper's events are still there.
        kept = central.db.run(lambda tx: tx.all(
            "SELECT kind, customer_id FROM events ORDER BY kind, customer_id"), write=False)
        assert sorted((r["kind"], r["customer_id"] or "") for r in kept) == [
            ("interest", ""), ("interest", "C0000002"), ("presence", "C0000002")]
        print(f"erasure applied at the online edge {elapsed:.2f} s after DELETE")
    finally:
        bridge.stop()
        thread.join(5)
        publisher.close()
        node.stop()
        for s in central.servers:
            s.stop()
        central.db.close()


def test_a_shelf_reader_cannot_push_a_nudge(broker, edge_config, tmp_path: Path) -> None:
    """The ACL: only principals of role ``edge`` write under ``edge/``."""
    broker.add_many([("nfc-01", "nfc_reader")])
    reader = make_client(broker.port, "nfc-01", "nfc-01-pw")
    acks: list = []
    reader.on_publish = lambda c, u, mid, reason, props: acks.append(reason)
    try:
        info = reader.publish(sync_erasures_topic(broker.store_id), erasure_message(1), qos=1)
        info.wait_for_publish(5)
        wait_until(lambda: acks)
        assert acks[0].is_failure  # 0x87 not authorized
    finally:
        reader.disconnect()
        reader.loop_stop()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.integers(0, 2**63 - 1).map(erasure_message)
       | st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                      lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=8)
       .map(lambda v: json.dumps({"seq": v}).encode()))
def test_any_payload_is_a_seq_or_a_clear_error(payload: bytes) -> None:
    try:
        seq = parse_erasure_message(payload)
    except ErasureMessageError as exc:
        assert str(exc)
        return
    assert isinstance(seq, int) and 0 <= seq < 2**63
    assert parse_erasure_message(erasure_message(seq)) == seq


@pytest.mark.parametrize("payload", [b"", b"[]", b'{"seq": -1}', b'{"seq": true}',
                                     b'{"seq": 1.5}', b'{"items": []}', b"x" * 300])
def test_bad_nudges_are_refused(payload: bytes) -> None:
    with pytest.raises(ErasureMessageError):
        parse_erasure_message(payload)


def test_the_bridge_process_nudges_only_the_store_the_erasure_is_for(broker, tmp_path) -> None:
    """``python -m central.stock_push`` runs the erasure push too, from central's database."""
    broker.add_many([("sync-bridge", "edge"), ("spy", "edge")])
    store = broker.store_id
    central = make_central({"sqlite_path": str(tmp_path / "central.db")})
    token = issue(central.db, "store", store)
    nudges: list[int] = []
    spy = make_client(broker.port, "spy", "spy-pw")
    subscribed = threading.Event()
    spy.on_subscribe = lambda *a: subscribed.set()
    spy.on_message = lambda c, u, m: nudges.append(parse_erasure_message(m.payload))
    spy.subscribe(sync_erasures_topic(store), qos=1)
    assert subscribed.wait(5)
    proc = BridgeProcess(broker, {"sqlite_path": tmp_path / "central.db"},
                         tmp_path / "bridge.log")
    try:
        now = time.time()
        # C1 identified in this store, C2 only elsewhere: only C1's erasure is this store's.
        status, _ = central.post_events([presence("C1", "s1", store=store, at=now - 60)],
                                        token=token)
        assert status == 200
        other = issue(central.db, "store", "store-elsewhere")
        central.post_events([presence("C2", "s2", store="store-elsewhere", at=now - 60)],
                            token=other)
        assert central.api("DELETE", "/api/v1/customers/C2")[0] == 202
        time.sleep(0.5)
        assert nudges == []
        assert central.api("DELETE", "/api/v1/customers/C1")[0] == 202
        wait_until(lambda: nudges, timeout=5)
        status, feed = central.api("GET", f"/api/v1/stores/{store}/erasures?since=0",
                                   token=token)
        assert nudges == [feed["next"]] and feed["erasures"][0]["customer_id"] == "C1"
        proc.stop()
    finally:
        proc.kill()
        spy.disconnect()
        spy.loop_stop()
        for s in central.servers:
            s.stop()
        central.db.close()
