"""Ack after commit, deterministically: messages the edge holds but has not committed survive
a SIGKILL because the broker still has them unacknowledged.

The test freezes the commit by holding SQLite's write lock from another connection, publishes,
waits until (a) Mosquitto's debug log shows every message delivered to the edge and (b) the
edge's log shows its writer reached the commit and failed on the lock, checks in the broker's
log that the edge acknowledged none of them, SIGKILLs the edge, releases the lock, restarts the
edge and requires every message exactly once. An ack moved before the commit (in the node, in
the bus, in paho's automatic ack) is on the wire before the writer's first failed commit, so
the test fails on every run, not by luck. Parametrised over the writer process on and off and
over MQTT 3.1.1 and 5.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.topics import device_topic
from tests.conftest import TestBroker, make_broker

from .conftest import GTIN, query, wait_until
from .edge_process import children, start_edge, wait_edge_online

N = 40
#: The edge's client id as Mosquitto logs it: its configured id, or its username where the
#: broker sets client id = username.
EDGE_CLIENT = "(?:vitrine-edge|edge)"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[TestBroker]:
    """The store broker with Mosquitto's per-packet debug log: the witness of what was acked."""
    tb = make_broker(tmp_path, extra=["log_type debug"])
    try:
        yield tb
    finally:
        tb.process.stop()


def broker_log(broker: TestBroker, offset: int) -> str:
    return (broker.data_dir / "broker.log").read_bytes()[offset:].decode(errors="replace")


def delivered_to_edge(text: str, topic: str) -> set[int]:
    """Message ids of PUBLISH packets Mosquitto sent the edge on ``topic``."""
    pat = re.compile(rf"Sending PUBLISH to {EDGE_CLIENT} "
                     rf"\(d\d, q1, r0, m(\d+), '{re.escape(topic)}'")
    return {int(m) for m in pat.findall(text)}


def acked_by_edge(text: str) -> set[int]:
    return {int(m) for m in re.findall(rf"Received PUBACK from {EDGE_CLIENT} \(Mid: (\d+)", text)}


def commit_failures(log: Path, offset: int) -> list[int]:
    """Batch sizes of the edge writer's failed commits logged after ``offset``."""
    text = log.read_bytes()[offset:].decode(errors="replace")
    pat = r"commit failed \(database is locked\); retrying batch of (\d+)"
    return [int(n) for n in re.findall(pat, text)]


def scan(i: int) -> dict[str, str]:
    return {"text": f"https://id.gs1.org/01/{GTIN}?n={i}"}


@pytest.mark.parametrize("writer_process", ["1", "0"], ids=["writer-process", "in-process"])
@pytest.mark.parametrize("mqtt_protocol", ["3.1.1", "5"], ids=["mqtt311", "mqtt5"])
def test_messages_held_uncommitted_survive_sigkill_exactly_once(
        broker, edge_config, device, tmp_path, writer_process, mqtt_protocol):
    log = tmp_path / "edge.log"
    settings = {"writer_process": writer_process, "mqtt_protocol": mqtt_protocol,
                "sqlite_busy_timeout_s": "0.1", "stale_check_s": "3600"}
    t0 = time.time()
    edge = start_edge(edge_config, log, **settings)
    lock = sqlite3.connect(edge_config.db_path, isolation_level=None)
    try:
        wait_edge_online(broker, t0)
        qr = device("qr-01")
        topic = device_topic(broker.store_id, "qr-01", "qr")
        # Freeze the commit: from here on no other connection can write.
        lock.execute("BEGIN IMMEDIATE")
        broker_offset = (broker.data_dir / "broker.log").stat().st_size
        edge_offset = log.stat().st_size
        sent = [qr.send("qr", scan(i), msg_id=f"held-{i}") for i in range(N)]
        # (a) Mosquitto sent all N to the edge; (b) the edge's writer tried to commit them.
        wait_until(lambda: len(delivered_to_edge(broker_log(broker, broker_offset), topic)) == N,
                   timeout=15)
        wait_until(lambda: len(commit_failures(log, edge_offset)) >= 2, timeout=15)
        in_flight = delivered_to_edge(broker_log(broker, broker_offset), topic)
        acked_early = in_flight & acked_by_edge(broker_log(broker, broker_offset))
        writers = children(edge.pid)
        assert len(writers) == (1 if writer_process == "1" else 0), writers
        edge.send_signal(signal.SIGKILL)
        edge.wait()
        for pid in writers:  # the writer process dies with the edge (PDEATHSIG)
            wait_until(lambda pid=pid: not os.path.exists(f"/proc/{pid}"), timeout=10)
        assert query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 0
        lock.execute("ROLLBACK")

        t1 = time.time()
        edge = start_edge(edge_config, log, **settings)
        wait_edge_online(broker, t1)
        # A marker sent after the restart is delivered after the redeliveries (one
        # session, in order); once it is committed, everything before it is too.
        qr.send("qr", scan(N), msg_id="marker")
        wait_until(lambda: query(edge_config.db_path,
                                 "SELECT count(*) FROM events WHERE msg_id = 'marker'")[0][0],
                   timeout=20)
        rows = query(edge_config.db_path, "SELECT msg_id FROM events WHERE device_id = 'qr-01'")
        got = sorted(r[0] for r in rows)
        assert got == sorted([*sent, "marker"]), (
            f"lost {sorted(set(sent) - set(got))}, extra {len(got) - len(set(got))}")
        assert acked_early == set(), (
            f"the edge acknowledged {len(acked_early)} messages it had not committed")
        (n_outbox,) = query(edge_config.db_path, "SELECT count(*) FROM outbox")[0]
        assert n_outbox == N + 1  # one interest event per scan, never two
    finally:
        lock.close()
        if edge.poll() is None:
            edge.send_signal(signal.SIGTERM)
            edge.wait(15)
