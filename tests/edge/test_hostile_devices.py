"""Hostile or broken devices cannot stop, starve or fill the store (issue 6, section 2).

Every test runs the real Mosquitto with the production configuration rendered on a
free port (client id = username, exact channels per kind, dynamic-security plugin)
and a real edge node.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.topics import device_topic
from edge.node import EdgeNode
from firmware_sim.frames import encode_frame, qr_frame

from .conftest import GTIN, make_client, query, wait_until


def _connect_rc(port: int, username: str, password: str, client_id: str,
                clean: bool = True) -> int:
    """Connect once, return the CONNACK reason code value (0 = accepted)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(username, password)
    result: list[int] = []
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        result.append(reason_code.value)
        done.set()

    c.on_connect = on_connect
    c.connect("127.0.0.1", port, clean_start=clean)
    c.loop_start()
    try:
        assert done.wait(5), "no CONNACK"
        time.sleep(0.2)
    finally:
        c.disconnect()
        c.loop_stop()
    return result[0]


def test_a_device_cannot_take_the_edges_session(edge_config, broker, device):
    """A device connecting with the edge's client id (clean start) neither kicks the edge
    nor destroys the messages the broker queued for it while it was down."""
    node = EdgeNode(edge_config).start()
    node.stop()  # the edge is down; its persistent session queues for it
    dev = device("nfc-01")
    dev.send("nfc", {"uid": "04a1b2c3d4e5f6"}, msg_id="queued-1")
    for impostor_id in ("edge", "vitrine-edge"):
        assert _connect_rc(broker.port, "nfc-02", "nfc-02-pw", impostor_id, clean=True) == 0
    dev.send("nfc", {"uid": "04a1b2c3d4e5f6"}, msg_id="queued-2")
    node = EdgeNode(edge_config).start()
    try:
        wait_until(lambda: query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 2,
                   timeout=10)
        # And while it runs, an impostor does not kick it off.
        assert _connect_rc(broker.port, "nfc-02", "nfc-02-pw", "edge") == 0
        dev.send("nfc", {"uid": "04a1b2c3d4e5f6"}, msg_id="live-1")
        wait_until(lambda: query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 3)
        assert node.bus.connected.is_set()
    finally:
        node.stop()
    log = (broker.data_dir / "broker.log").read_text()
    assert "as edge" in log and "as vitrine-edge" not in log  # the broker renamed it


@pytest.mark.allow_errors  # the cut-off is logged CRITICAL on purpose
def test_a_flooding_device_is_cut_off_and_the_others_lose_nothing(edge_config, broker):
    cfg = dataclasses.replace(edge_config, device_rate_limit=100.0, device_burst=300,
                              flood_cutoff_s=3600.0)
    node = EdgeNode(cfg).start()
    flooder = make_client(broker.port, "nfc-02", "nfc-02-pw", inflight=1000)
    good = make_client(broker.port, "nfc-01", "nfc-01-pw")
    stop = threading.Event()

    def flood() -> None:
        n = 0
        topic = device_topic(broker.store_id, "nfc-02", "nfc")
        while not stop.is_set() and n < 20_000:
            n += 1
            flooder.publish(topic, json.dumps({"msg_id": f"f{n}", "ts": time.time(),
                                               "uid": "04a1b2c3d4e5f6"}), qos=1)
            if n % 500 == 0:
                time.sleep(0.001)

    t = threading.Thread(target=flood)
    try:
        flood_from = time.time()
        t.start()
        infos = []
        for i in range(40):
            infos.append(good.publish(device_topic(broker.store_id, "nfc-01", "nfc"),
                                      json.dumps({"msg_id": f"g{i}", "ts": time.time(),
                                                  "uid": "04a1b2c3d4e5f6"}), qos=1))
            time.sleep(0.02)
        for info in infos:
            info.wait_for_publish(10)
        stop.set()
        t.join(30)
        wait_until(lambda: query(cfg.db_path, "SELECT count(*) FROM events WHERE device_id ="
                                 " 'nfc-01'")[0][0] == 40, timeout=30)
        (cut,) = wait_until(lambda: query(cfg.db_path, "SELECT device_id, reason, cut_at FROM"
                                          " device_cutoffs WHERE reinstated_at IS NULL"))
        assert cut[:2] == ("nfc-02", "flood")
        stored = query(cfg.db_path, "SELECT count(*) FROM events WHERE device_id = 'nfc-02'")
        # Its burst plus what its rate refilled until the cut, then nothing more is stored.
        # (On a loaded machine the flood itself is slower, so the refill counts: the bound
        # follows the measured time, not a guess.)
        assert stored[0][0] <= 300 + 100.0 * (cut[2] - flood_from) + 50, (stored, cut)
        # Refused at the broker while cut off; the other devices still get in.
        assert _connect_rc(broker.port, "nfc-02", "nfc-02-pw", "nfc-02") != 0
        assert _connect_rc(broker.port, "qr-01", "qr-01-pw", "qr-01") == 0
        assert node.metrics.get("flood_cutoffs") == 1
        # Reinstated early by the operator: the edge lifts it at its next housekeeping.
        from edge.cli import main as edge_cli

        assert edge_cli(["reinstate", "nfc-02", "--db", str(cfg.db_path)]) == 0
        wait_until(lambda: query(cfg.db_path, "SELECT reinstated_at FROM device_cutoffs")[0][0],
                   timeout=15)
        wait_until(lambda: _connect_rc(broker.port, "nfc-02", "nfc-02-pw", "nfc-02") == 0,
                   timeout=10)
    finally:
        stop.set()
        for c in (flooder, good):
            c.disconnect()
            c.loop_stop()
        node.stop()


def test_frames_only_from_cameras_and_the_frame_lane_is_bounded(edge_config, broker, device):
    cfg = dataclasses.replace(edge_config, frame_queue_max=2)
    # nfc-02 is a reader in the edge's registry, but provisioned as a camera at the broker.
    broker.add("nfc-02", "camera")
    node = EdgeNode(cfg).start()
    try:
        img = qr_frame(f"https://id.gs1.org/01/{GTIN}", scale=4, noise=0.05, seed=1)
        image = base64.b64encode(encode_frame(img, "png")).decode()
        cam = device("cam-01")
        for _ in range(12):
            cam.send("frame", {"format": "png", "image": image})
        device("nfc-02").send("frame", {"format": "png", "image": image})
        wait_until(lambda: query(cfg.db_path, "SELECT count(*) FROM events WHERE channel ="
                                 " 'frame'")[0][0] == 12, timeout=30)
        rows = wait_until(lambda: query(cfg.db_path, "SELECT device_id, reason FROM quarantine"))
        assert rows == [("nfc-02", "channel_not_allowed")]
        assert 1 <= node.frames.high_water <= 2
        # counters are added after the commit the query above already sees: wait for them
        wait_until(lambda: node.metrics.get("interest") == 12, timeout=10)
    finally:
        node.stop()


def test_quarantine_keeps_a_quota_per_device_then_counts(edge_config, device, observer):
    cfg = dataclasses.replace(edge_config, quarantine_device_rows=5)
    node = EdgeNode(cfg).start()
    try:
        dev = device("nfc-01")
        for i in range(12):
            dev.send("nfc", f"not json {i}".encode())
        device("qr-01").send("qr", {"text": f"https://id.gs1.org/01/{GTIN}"})
        observer.wait_for("interest")
        wait_until(lambda: node.metrics.get("quarantined") == 12)
        assert query(cfg.db_path, "SELECT count(*) FROM quarantine")[0][0] == 5
        assert query(cfg.db_path, "SELECT device_id, reason, count FROM quarantine_overflow"
                     ) == [("nfc-01", "not_json", 7)]
        assert node.metrics.get("quarantine_over_quota") == 7
    finally:
        node.stop()


def test_retained_messages_only_on_state_and_only_own_channels(edge, broker, device,
                                                              edge_config):
    dev = device("nfc-01")
    topic = device_topic(broker.store_id, "nfc-01", "nfc")
    payload = json.dumps({"msg_id": "r1", "ts": time.time(), "uid": "04a1b2c3d4e5f6"})
    dev.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    # A channel of another kind and a topic deeper than a channel are refused by the ACL
    # (PUBACK 0x87 under MQTT 5): nothing reaches the edge.
    refused = [dev.client.publish(device_topic(broker.store_id, "nfc-01", "qr"), b"{}", qos=1),
               dev.client.publish(topic + "/x", b"{}", qos=1, retain=True)]
    for info in refused:
        info.wait_for_publish(5)
    wait_until(lambda: query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 1)
    # The edge reconnects (as after a restart): it gets the retained message, stores
    # nothing new (duplicate) and deletes it at the broker.
    edge.bus.client.reconnect()
    time.sleep(1.0)
    got: list[bytes] = []
    probe = make_client(broker.port, "probe", broker.add("probe", "edge"))
    try:
        probe.on_message = lambda c, u, m: got.append(m.payload)
        probe.subscribe(f"vitrine/v1/{broker.store_id}/devices/+/nfc", 1)
        time.sleep(0.5)
    finally:
        probe.disconnect()
        probe.loop_stop()
    assert query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 1
    assert query(edge_config.db_path, "SELECT count(*) FROM quarantine")[0][0] == 0
    assert got == []
