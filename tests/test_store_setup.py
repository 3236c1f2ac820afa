"""`vitrine store provision`: one command, then a real store runs from what it wrote."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from edge.config import load_config
from edge.node import EdgeNode
from firmware_sim.fleet import Fleet
from firmware_sim.layout import DEMO_LAYOUT, load_layout
from vitrine.broker import free_port, mosquitto_binary, wait_for_port


def provision(layout: Path, root: Path, port: int, *extra: str) -> str:
    out = subprocess.run([sys.executable, "-m", "vitrine", "store", "provision", "--layout",
                          str(layout), "--dir", str(root), "--port", str(port),
                          "--panel-port", "0", *extra],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_store_provisioned_in_one_step_runs(tmp_path: Path) -> None:
    root, port = tmp_path / "store", free_port()
    text = provision(DEMO_LAYOUT, root, port)
    assert "mosquitto -c" in text and "vitrine edge --config" in text
    secrets = ["edge.toml", "creds.json", "loyalty.key", "bridge.password", "broker/passwd"]
    for name in secrets:
        assert stat.S_IMODE(os.stat(root / name).st_mode) == 0o600, name
    creds = json.loads((root / "creds.json").read_text())
    for secret in creds.values():
        assert secret not in text  # never printed
    assert set(creds) == {d.id for d in load_layout(DEMO_LAYOUT).devices}
    conf = (root / "broker" / "mosquitto.conf").read_text()
    assert f"listener {port} 127.0.0.1" in conf and f"password_file {root}/broker/passwd" in conf

    # The broker from the written config, the edge from edge.toml, the simulator from
    # creds.json and loyalty.key: nothing else is needed.
    broker = subprocess.Popen([mosquitto_binary() or "mosquitto", "-c",
                               str(root / "broker" / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    node = fleet = None
    try:
        wait_for_port(port)
        cfg = load_config(root / "edge.toml", env={})
        node = EdgeNode(cfg).start()
        kid, _, key = (root / "loyalty.key").read_text().strip().partition(":")
        fleet = Fleet(load_layout(root / "layout.json"), creds=root / "creds.json",
                      loyalty_key=bytes.fromhex(key), loyalty_key_id=kid, port=port,
                      speed=40, seed=5, identified_share=0.6, arrival_s=5,
                      on_story=lambda line: None)
        assert fleet.start(wait=10) == len(fleet.devices)
        stats = fleet.run(10)
        assert fleet.close(flush_timeout=10)
        time.sleep(1.0)
        assert stats["tap"] + stats["scan"] > 0
        db = sqlite3.connect(cfg.db_path)
        kinds = dict(db.execute("SELECT kind, count(*) FROM outbox GROUP BY kind").fetchall())
        assert kinds.get("interest", 0) > 0 and kinds.get("presence", 0) > 0, kinds
        assert db.execute("SELECT count(*) FROM quarantine WHERE reason LIKE 'token_%'"
                          ).fetchone()[0] == 0  # the simulator signs with the edge's key
    finally:
        if fleet is not None:
            fleet.close(flush_timeout=0)
        if node is not None:
            node.stop()
        broker.terminate()
        broker.wait(10)


def test_running_it_again_keeps_passwords_and_follows_the_layout(tmp_path: Path) -> None:
    root, port = tmp_path / "store", free_port()
    provision(DEMO_LAYOUT, root, port)
    before = json.loads((root / "creds.json").read_text())
    edge_before = tomllib.loads((root / "edge.toml").read_text())
    layout = json.loads(DEMO_LAYOUT.read_text())
    removed = layout["devices"].pop(0)["id"]
    layout["devices"].append({"id": "nfc-new-01", "kind": "nfc_reader", "zone":
                              layout["zones"][0]["id"], "shelf": None})
    changed = tmp_path / "layout.json"
    changed.write_text(json.dumps(layout))
    provision(changed, root, port)
    after = json.loads((root / "creds.json").read_text())
    assert removed not in after and "nfc-new-01" in after
    assert {k: v for k, v in after.items() if k in before} == {
        k: v for k, v in before.items() if k != removed}
    assert tomllib.loads((root / "edge.toml").read_text()) == edge_before  # same passwords
    registry = json.loads((root / "broker" / "registry.json").read_text())["principals"]
    assert removed not in registry and {"edge", "sync-bridge", "nfc-new-01"} <= set(registry)
    provision(changed, root, port, "--rotate")
    rotated = json.loads((root / "creds.json").read_text())
    assert all(rotated[k] != after[k] for k in after)


def test_broker_port_paths_user_and_log_are_options(tmp_path: Path) -> None:
    root = tmp_path / "store"
    provision(DEMO_LAYOUT, root, 18831, "--broker-dir", str(tmp_path / "mq"), "--tls-port",
              "8884", "--tls-dir", str(tmp_path / "tls"), "--broker-user", "mosquitto",
              "--log-dest", "syslog", "--bind", "10.0.0.5")
    conf = (tmp_path / "mq" / "mosquitto.conf").read_text()
    for line in ["listener 18831 10.0.0.5", "listener 8884", "user mosquitto",
                 "log_dest syslog", f"password_file {tmp_path}/mq/passwd",
                 f"acl_file {tmp_path}/mq/acl", f"cafile {tmp_path}/tls/ca.crt",
                 f"keyfile {tmp_path}/tls/broker.key"]:
        assert line in conf.splitlines(), line
    edge = tomllib.loads((root / "edge.toml").read_text())["edge"]
    assert (edge["mqtt_host"], edge["mqtt_port"]) == ("10.0.0.5", 18831)
    assert not (root / "broker").exists()
