"""bench.ingest: QoS 1 events from devices to committed SQLite rows.

Method. 100k events (half NFC taps of a registered tag, half GS1 Digital Link
QR scans) are published by several publisher processes, one MQTT identity each,
into the consumer's persistent session while the consumer is offline; every
publish is confirmed by the broker's PUBACK (counted, not assumed). Then the
consumer connects and drains the queue. Measured from connect (for the edge:
from starting its process, start-up included, as when a restarted edge drains
its backlog; with bytecode compiled, as installed) to the last message handled:

* ``bare_events_per_s``: a bare paho subscriber that only counts messages
  (auto-ack): the raw limit of broker + paho + loopback on this machine.
* ``events_per_s``: the edge node (subprocess ``python -m edge``), which
  validates, deduplicates, enriches, commits to SQLite, publishes the derived
  interest events and acknowledges each message only after its commit.

Pre-loading the queue takes the generator out of the measurement (it cannot be
the bottleneck) and runs both consumers against the same broker and load.
``ratio`` = events_per_s / bare_events_per_s (target >= 0.5).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from contract.mqtt_wire import VitrineClient
from contract.topics import device_subscription

from .harness import (
    STORE,
    client,
    connect,
    ensure_bytecode,
    layout,
    machine,
    run_publishers,
    start_bench_broker,
)

TOTAL = int(os.environ.get("BENCH_EVENTS", "100000"))
PUBLISHERS = 4


def _register_session(port: int, name: str) -> None:
    """Create the consumer's persistent session (subscription) before the load."""
    c = client(name)
    connect(c, port, clean=False)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.subscribe(device_subscription(STORE), qos=1)
    done.wait(5)
    c.disconnect()
    c.loop_stop()


def bare(port: int, total: int, *, fast: bool = False) -> float:
    """A subscriber that only counts: stock paho, or paho with Vitrine's wire tuning."""
    count = [0]
    finished = threading.Event()

    def on_message(cl, userdata, msg):
        count[0] += 1
        if count[0] >= total:
            finished.set()

    c = VitrineClient("bare") if fast else client("bare")
    c.username_pw_set("bare", "bare-pw")
    c.on_message = on_message
    t0 = time.perf_counter()
    connect(c, port, clean=False, receive_max=1000)
    if not finished.wait(300):
        raise RuntimeError(f"bare subscriber got {count[0]}/{total}")
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return total / elapsed


def mosquitto_sub_rate(port: int, total: int) -> float:
    """The raw limit: Mosquitto's own C client draining the same queue at QoS 1."""
    t0 = time.perf_counter()
    out = subprocess.run(["mosquitto_sub", "-p", str(port), "-i", "bare", "-u", "bare",
                          "-P", "bare-pw", "-c", "-q", "1", "-t", device_subscription(STORE),
                          "-C", str(total), "-V", "mqttv311"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"mosquitto_sub failed: {out.stderr.decode()[:300]}")
    return total / (time.perf_counter() - t0)


def spawn_edge(env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    with open(workdir / "edge.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "edge", "--metrics-every", "0"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def prepare_edge(port: int, workdir: Path, devices: list[str]) -> tuple[dict[str, str], Path]:
    """Start the edge once so it creates its database and persistent session, then stop it."""
    db = workdir / "edge.db"
    layout_file = workdir / "layout.json"
    layout_file.write_text(json.dumps(layout(devices)))
    env = {**os.environ, "VITRINE_STORE_ID": STORE, "VITRINE_DB_PATH": str(db),
           "VITRINE_MQTT_PORT": str(port), "VITRINE_MQTT_PASSWORD": "edge-pw",
           "VITRINE_LAYOUT_PATH": str(layout_file), "VITRINE_PANEL_PORT": "0",
           "VITRINE_MQTT_PROTOCOL": os.environ.get("BENCH_MQTT_PROTOCOL", "3.1.1"),
           # 25k messages per device in seconds is far above any real device's rate:
           # keep the per-device limiter's arithmetic in the path but never trip it.
           "VITRINE_DEVICE_RATE_LIMIT": "1000000"}
    setup = spawn_edge(env, workdir)
    deadline = time.time() + 20
    while not db.exists():
        if time.time() > deadline:
            raise TimeoutError("edge did not create its database")
        time.sleep(0.05)
    time.sleep(1.0)
    setup.send_signal(signal.SIGTERM)
    setup.wait(20)
    return env, db


def _count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()


def run_edge(env: dict[str, str], db: Path, total: int, workdir: Path) -> float:
    t0 = time.perf_counter()
    proc = spawn_edge(env, workdir)
    try:
        while True:
            n = _count(db)
            if n >= total:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"edge exited with {proc.returncode} at {n}/{total}")
            if time.perf_counter() - t0 > 600:
                raise RuntimeError(f"edge stuck at {n}/{total}")
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return total / elapsed


def main() -> None:
    ensure_bytecode()  # the edge's start-up is inside the measured time
    devices = [f"dev-{i}" for i in range(PUBLISHERS)]
    broker, workdir = start_bench_broker(devices)
    per = TOTAL // PUBLISHERS
    total = per * PUBLISHERS
    try:
        port = broker.port
        # Raw limits, each on the same pre-loaded queue.
        _register_session(port, "bare")
        t0 = time.perf_counter()
        run_publishers(port, devices, per)
        load_rate = total / (time.perf_counter() - t0)
        bare_rate = bare(port, total)
        run_publishers(port, devices, per)
        bare_fast_rate = bare(port, total, fast=True)
        run_publishers(port, devices, per)
        sub_rate = mosquitto_sub_rate(port, total)
        # Edge: let it create its DB and session, stop it, load, then measure.
        env, db = prepare_edge(port, workdir, devices)
        run_publishers(port, devices, per)
        edge_rate = run_edge(env, db, total, workdir)
    finally:
        broker.stop()
    result = {
        "events": total,
        "publishers": PUBLISHERS,
        "load_events_per_s": round(load_rate),
        "bare_events_per_s": round(bare_rate),
        "bare_tuned_events_per_s": round(bare_fast_rate),
        "mosquitto_sub_events_per_s": round(sub_rate),
        "events_per_s": round(edge_rate),
        "ratio": round(edge_rate / bare_rate, 3),
        "ratio_vs_tuned": round(edge_rate / bare_fast_rate, 3),
        "mqtt_protocol": os.environ.get("BENCH_MQTT_PROTOCOL", "3.1.1"),
        "machine": machine(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
