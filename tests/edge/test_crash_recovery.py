"""SIGKILL the edge in the middle of a burst: no accepted event lost, none duplicated."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from contract.topics import device_topic

from .conftest import GTIN, make_client, query, wait_until
from .edge_process import children, start_edge, wait_edge_online

#: Bursts of thousands of messages per device within seconds are a flood by the
#: per-device limit (edge/flood.py); these tests are about crashes, not floods.
NO_RATE_LIMIT = {"device_rate_limit": "0"}

N_DEVICES = 4
PER_DEVICE = 2500


def count_events(edge_config) -> int:
    return query(edge_config.db_path, "SELECT count(*) FROM events")[0][0]


def publish_burst(broker, device_id: str, n: int, errors: list[str]) -> None:
    c = make_client(broker.port, device_id, f"{device_id}-pw", inflight=100)
    infos = []
    topic = device_topic(broker.store_id, device_id, "qr")
    for i in range(n):
        payload = json.dumps({"msg_id": f"{device_id}-{i}", "ts": time.time(),
                              "text": f"https://id.gs1.org/01/{GTIN}"})
        info = c.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            errors.append(f"{device_id}-{i}: rc {info.rc}")
        infos.append(info)
        if i % 200 == 0:
            time.sleep(0.01)  # a burst spread over ~1 s, so the kill lands mid-way
    for info in infos:
        info.wait_for_publish(30)
        if not info.is_published():
            errors.append(f"not acknowledged by broker: mid {info.mid}")
    c.disconnect()
    c.loop_stop()


def test_sigkill_mid_burst_loses_nothing_and_duplicates_nothing(broker, edge_config, tmp_path):
    devices = [f"qr-k{i}" for i in range(N_DEVICES)]
    broker.add_many([(d, "qr_scanner") for d in devices])
    layout = json.loads(Path(edge_config.layout_path).read_text())
    layout["devices"] += [{"id": d, "kind": "qr_scanner", "zone": "kitchen"} for d in devices]
    Path(edge_config.layout_path).write_text(json.dumps(layout))
    log = tmp_path / "edge.log"

    t0 = time.time()
    edge = start_edge(edge_config, log, **NO_RATE_LIMIT)
    try:
        wait_edge_online(broker, t0)
        errors: list[str] = []
        threads = [threading.Thread(target=publish_burst, args=(broker, d, PER_DEVICE, errors))
                   for d in devices]
        for t in threads:
            t.start()
        total = N_DEVICES * PER_DEVICE
        # Kill twice, at different points of the burst: first the edge process (its
        # writer process must die with it), then only the writer process (the edge
        # must notice and exit, leaving unacknowledged messages with the broker).
        for kill in (1, 2):
            threshold = total * kill // 5
            wait_until(lambda threshold=threshold: count_events(edge_config) > threshold,
                       timeout=60)
            writers = children(edge.pid)
            assert len(writers) == 1, f"expected one writer process, found {writers}"
            if kill == 1:
                edge.send_signal(signal.SIGKILL)
                edge.wait()
                wait_until(lambda pid=writers[0]: not os.path.exists(f"/proc/{pid}"),
                           timeout=10)
            else:
                os.kill(writers[0], signal.SIGKILL)
                wait_until(lambda proc=edge: proc.poll() is not None, timeout=15)
                assert edge.returncode == 70
            committed_at_kill = count_events(edge_config)
            assert committed_at_kill < total, "kill landed after the burst: test proves nothing"
            time.sleep(0.3)
            t_restart = time.time()
            edge = start_edge(edge_config, log, **NO_RATE_LIMIT)
            wait_edge_online(broker, t_restart)
        for t in threads:
            t.join(60)
        assert errors == []
        # A marker published after every publisher had its PUBACK is queued to the edge after
        # all of the burst (redeliveries included): once it is committed, a duplicate would be.
        marker = make_client(broker.port, devices[0], f"{devices[0]}-pw")
        marker.publish(device_topic(broker.store_id, devices[0], "qr"),
                       json.dumps({"msg_id": "marker", "ts": time.time(),
                                   "text": f"https://id.gs1.org/01/{GTIN}"}),
                       qos=1).wait_for_publish(10)
        marker.disconnect()
        marker.loop_stop()
        wait_until(lambda: query(edge_config.db_path,
                                 "SELECT count(*) FROM events WHERE msg_id = 'marker'")[0][0],
                   timeout=60)
        (n_events,) = query(edge_config.db_path, "SELECT count(*) FROM events")[0]
        (n_distinct,) = query(edge_config.db_path,
                              "SELECT count(DISTINCT device_id || '/' || msg_id) FROM events")[0]
        (n_outbox,) = query(edge_config.db_path, "SELECT count(*) FROM outbox")[0]
        assert n_events == n_distinct == total + 1  # the burst and the marker
        assert n_outbox == total + 1  # one interest event per accepted scan, never two
        expected = {f"{d}-{i}" for d in devices for i in range(PER_DEVICE)} | {"marker"}
        got = {r[0] for r in query(edge_config.db_path, "SELECT msg_id FROM events")}
        assert got == expected
    finally:
        if edge.poll() is None:
            edge.send_signal(signal.SIGTERM)
            edge.wait(15)
