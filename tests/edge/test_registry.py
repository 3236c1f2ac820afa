"""Device registry from birth/last will and heartbeats."""

from __future__ import annotations

import json
import time

from contract.topics import device_topic

from .conftest import query, wait_until


def test_birth_and_will_update_the_registry(edge, device, broker, edge_config):
    dev = device("nfc-01")
    topic = device_topic(broker.store_id, "nfc-01", "state")
    dev.client.publish(topic, json.dumps({"state": "online", "kind": "nfc_reader",
                                          "fw": "1.4.2", "heartbeat_s": 0.2}),
                       qos=1, retain=True).wait_for_publish(5)
    wait_until(lambda: query(edge_config.db_path,
                             "SELECT state, fw FROM devices WHERE device_id='nfc-01'")
               == [("online", "1.4.2")])
    dev.client.publish(topic, json.dumps({"state": "offline"}), qos=1,
                       retain=True).wait_for_publish(5)
    wait_until(lambda: query(edge_config.db_path,
                             "SELECT state FROM devices WHERE device_id='nfc-01'")
               == [("offline",)])


def test_silent_device_is_marked_stale_then_recovers(edge, device, broker, edge_config):
    dev = device("nfc-02")
    dev.client.publish(device_topic(broker.store_id, "nfc-02", "state"),
                       json.dumps({"state": "online", "heartbeat_s": 0.1}),
                       qos=1, retain=True).wait_for_publish(5)
    wait_until(lambda: query(edge_config.db_path,
                             "SELECT stale FROM devices WHERE device_id='nfc-02'") == [(1,)],
               timeout=5)
    # the writer commits the row, then the edge counts the transition: wait for both
    wait_until(lambda: edge.metrics.get("stale_transitions") >= 1, timeout=5)
    assert edge.metrics.get("stale_transitions") == 1
    dev.send("telemetry", {"uptime_s": 12})
    wait_until(lambda: query(edge_config.db_path,
                             "SELECT stale FROM devices WHERE device_id='nfc-02'") == [(0,)])
    time.sleep(0)  # keep the device alive until here
