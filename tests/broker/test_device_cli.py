"""`vitrine device add/revoke` provisions devices on the running broker."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def vitrine(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vitrine", *args], capture_output=True,
                          text=True, timeout=30)


def try_connect(port: int, user: str, password: str) -> int:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    rc: list[int] = []
    done = threading.Event()
    c.on_connect = lambda cl, u, f, reason, p: (rc.append(reason.value), done.set())
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert done.wait(5)
    c.disconnect()
    c.loop_stop()
    return rc[0]


def test_add_then_revoke_a_device(broker, tmp_path):
    edge_db = tmp_path / "edge.db"
    common = ["--broker-dir", str(broker.data_dir), "--store-id", broker.store_id]
    out = vitrine("device", *common, "--edge-db", str(edge_db), "add", "nfc-77",
                  "--kind", "nfc_reader", "--zone", "shoes", "--shelf", "S9")
    assert out.returncode == 0, out.stderr
    assert "broker reloaded" in out.stderr
    creds = json.loads(out.stdout)
    assert try_connect(broker.port, "nfc-77", creds["password"]) == 0
    # Mosquitto 2.0 answers a wrong password, and an unknown user, with 0x87 Not authorized.
    assert try_connect(broker.port, "nfc-77", "guess") == 0x87
    # no clear-text password on disk
    assert creds["password"] not in (broker.data_dir / "passwd").read_text()
    rows = sqlite3.connect(edge_db).execute(
        "SELECT device_id, kind, zone, shelf FROM devices").fetchall()
    assert rows == [("nfc-77", "nfc_reader", "shoes", "S9")]

    again = vitrine("device", *common, "add", "nfc-77", "--kind", "nfc_reader")
    assert again.returncode == 2 and "already provisioned" in again.stderr

    out = vitrine("device", *common, "revoke", "nfc-77")
    assert out.returncode == 0, out.stderr
    assert try_connect(broker.port, "nfc-77", creds["password"]) == 0x87
    listed = vitrine("device", *common, "list").stdout
    assert "nfc-77" not in listed and "edge\tedge" in listed


def test_bad_kind_and_bad_id_are_refused(broker):
    common = ["--broker-dir", str(broker.data_dir), "--store-id", broker.store_id]
    assert vitrine("device", *common, "add", "bad/id", "--kind", "nfc_reader").returncode == 2
    out = vitrine("device", *common, "add", "nfc-1", "--kind", "toaster")
    assert out.returncode == 2 and "toaster" in out.stderr
