"""The edge as a real process (``python -m edge``), for tests that SIGKILL it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from contract.topics import edge_state_topic

from .conftest import make_client


def children(pid: int) -> list[int]:
    """The edge's writer process(es): children of ``pid`` started by multiprocessing's
    spawn (not its resource tracker), from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
                out.append(int(entry))
    return out


def start_edge(edge_config, log: Path, **settings: str) -> subprocess.Popen[bytes]:
    """Start ``python -m edge`` on ``edge_config``; ``settings`` become ``VITRINE_*`` variables."""
    env = {**os.environ,
           "VITRINE_STORE_ID": edge_config.store_id,
           "VITRINE_DB_PATH": str(edge_config.db_path),
           "VITRINE_MQTT_PORT": str(edge_config.mqtt_port),
           "VITRINE_MQTT_PASSWORD": edge_config.mqtt_password,
           "VITRINE_LOYALTY_KEYS": edge_config.loyalty_keys,
           "VITRINE_LAYOUT_PATH": str(edge_config.layout_path),
           "VITRINE_PANEL_PORT": "0",
           **{f"VITRINE_{k.upper()}": v for k, v in settings.items()}}
    return subprocess.Popen([sys.executable, "-m", "edge", "--metrics-every", "0"], env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115


def wait_edge_online(broker, after: float) -> None:
    """Wait for the edge's retained ``online`` state published at or after ``after``."""
    seen = threading.Event()
    c = make_client(broker.port, "observer", "observer-pw")

    def on_message(client, userdata, msg):
        state = json.loads(msg.payload)
        if state.get("state") == "online" and state.get("ts", 0) >= after:
            seen.set()

    c.on_message = on_message
    c.subscribe(edge_state_topic(broker.store_id), qos=1)
    try:
        assert seen.wait(20), "edge did not come online"
    finally:
        c.disconnect()
        c.loop_stop()
