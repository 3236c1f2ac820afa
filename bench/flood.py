"""bench.flood: what one flooding device costs the other devices of the store.

Method. Five devices tap steadily (each every 100 ms, QoS 1, a fresh ``ts``
per tap); an in-store observer timestamps each tap's interest event. Phase 1,
``--calm-s`` seconds, measures their tap -> event latency with no flood (the
same-run baseline). Phase 2 adds one device flooding as fast as Mosquitto's own
C client can publish (``mosquitto_pub -l``, QoS 1, valid taps with unique
``msg_id``s: the worst case, every one of them would be a stored event) for
``--flood-s`` seconds. The edge runs with its default limits (``device_rate_limit``
200/s, burst 1,000), so it cuts the flooder off at the broker.

Reported: ``other_p99_ms`` / ``other_p50_ms`` during the flood phase,
``calm_p99_ms`` (baseline), ``ratio_p99`` = other / calm, ``other_lost``: taps of
the other devices acknowledged by the broker but absent from the edge database
at the end, ``flood_stored`` (the flooder's messages
that became events before the cut-off), ``cut_off``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from contract.topics import device_topic, event_topic

from .harness import STORE, TAG_UID, client, connect, layout, machine, start_bench_broker
from .ingest import spawn_edge

OTHERS = [f"dev-{i}" for i in range(1, 11, 2)]  # odd: NFC readers
FLOODER = "dev-99"
TAP_INTERVAL_S = 0.1


def _tapper(port: int, device: str, stop_at: float, q: Any) -> None:
    c = client(device)
    c.max_inflight_messages_set(20)
    acked: list[int] = []
    c.on_publish = lambda cl, u, mid, rc, p: acked.append(mid)
    connect(c, port)
    sent = 0
    topic = device_topic(STORE, device, "nfc")
    while time.time() < stop_at:
        sent += 1
        body = json.dumps({"msg_id": f"{device}-{sent}", "ts": time.time(), "uid": TAG_UID})
        c.publish(topic, body, qos=1)
        time.sleep(TAP_INTERVAL_S)
    deadline = time.time() + 30
    while len(acked) < sent and time.time() < deadline:
        time.sleep(0.01)
    c.disconnect()
    c.loop_stop()
    q.put({"device": device, "sent": sent, "acked": len(acked)})


def _percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 3) if xs else float("nan")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.flood")
    ap.add_argument("--calm-s", type=float, default=10.0)
    ap.add_argument("--flood-s", type=float, default=15.0)
    ap.add_argument("--flood-messages", type=int, default=300_000)
    args = ap.parse_args(argv)
    devices = [*OTHERS, FLOODER]
    broker, workdir = start_bench_broker(devices)
    db = workdir / "edge.db"
    layout_file = workdir / "layout.json"
    layout_file.write_text(json.dumps(layout(devices)))
    env = {**os.environ, "VITRINE_STORE_ID": STORE, "VITRINE_DB_PATH": str(db),
           "VITRINE_MQTT_PORT": str(broker.port), "VITRINE_MQTT_PASSWORD": "edge-pw",
           "VITRINE_LAYOUT_PATH": str(layout_file), "VITRINE_PANEL_PORT": "0"}
    latencies: list[tuple[float, float]] = []  # (tap ts, latency ms)
    lock = threading.Lock()
    observer = client("observer")

    def on_message(cl: Any, userdata: Any, msg: Any) -> None:
        now = time.time()
        with lock:
            for ev in json.loads(msg.payload):
                if ev.get("device_id") != FLOODER and ev.get("device_ts"):
                    latencies.append((ev["device_ts"], (now - ev["device_ts"]) * 1000))

    observer.on_message = on_message
    connect(observer, broker.port)
    observer.subscribe(event_topic(STORE, "interest"), qos=1)
    edge = spawn_edge(env, workdir)
    flood_file = Path(tempfile.mkstemp(prefix="vitrine-flood-", suffix=".jsonl")[1])
    try:
        with open(flood_file, "w") as fh:
            for i in range(args.flood_messages):
                fh.write(json.dumps({"msg_id": f"f{i}", "ts": 1767225600.0, "uid": TAG_UID})
                         + "\n")
        time.sleep(3.0)
        t_calm = time.time()
        t_flood = t_calm + args.calm_s
        stop_at = t_flood + args.flood_s
        q: Any = mp.Queue()
        procs = [mp.Process(target=_tapper, args=(broker.port, d, stop_at, q), daemon=True)
                 for d in OTHERS]
        for p in procs:
            p.start()
        time.sleep(max(0.0, t_flood - time.time()))
        flood = subprocess.Popen(
            ["mosquitto_pub", "-p", str(broker.port), "-u", FLOODER, "-P", f"{FLOODER}-pw",
             "-q", "1", "-t", device_topic(STORE, FLOODER, "nfc"), "-l"],
            stdin=open(flood_file, "rb"), stdout=subprocess.DEVNULL,  # noqa: SIM115
            stderr=subprocess.DEVNULL)
        results = [q.get(timeout=args.calm_s + args.flood_s + 120) for _ in procs]
        flood_end = time.time()
        try:
            flood.wait(max(0.0, stop_at - time.time()) + 1)
        except subprocess.TimeoutExpired:
            flood.kill()
            flood.wait()
        sent = sum(r["acked"] for r in results)
        conn = sqlite3.connect(db, timeout=30)
        deadline = time.time() + 60
        while True:
            (stored,) = conn.execute("SELECT count(*) FROM events WHERE device_id != ?",
                                     (FLOODER,)).fetchone()
            if stored >= sent or time.time() > deadline:
                break
            time.sleep(0.2)
        (flood_stored,) = conn.execute("SELECT count(*) FROM events WHERE device_id = ?",
                                       (FLOODER,)).fetchone()
        try:
            cut = conn.execute("SELECT count(*) FROM device_cutoffs WHERE device_id = ?",
                               (FLOODER,)).fetchone()[0] > 0
        except sqlite3.Error:
            cut = False
        conn.close()
    finally:
        observer.disconnect()
        observer.loop_stop()
        edge.send_signal(signal.SIGTERM)
        edge.wait(30)
        broker.stop()
        flood_file.unlink(missing_ok=True)
    with lock:
        calm = [ms for ts, ms in latencies if t_calm <= ts < t_flood]
        flooded = [ms for ts, ms in latencies if t_flood <= ts <= flood_end]
    out = {"others": len(OTHERS), "tap_interval_ms": TAP_INTERVAL_S * 1000,
           "calm_s": args.calm_s, "flood_s": args.flood_s,
           "other_p50_ms": _percentile(flooded, 0.5), "other_p99_ms": _percentile(flooded, 0.99),
           "other_max_ms": round(max(flooded), 3) if flooded else None,
           "calm_p50_ms": _percentile(calm, 0.5), "calm_p99_ms": _percentile(calm, 0.99),
           "ratio_p99": round(_percentile(flooded, 0.99) / _percentile(calm, 0.99), 2)
           if calm and flooded else None,
           "other_sent": sent, "other_lost": max(0, sent - stored),
           "flood_stored": flood_stored, "cut_off": cut, "machine": machine()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
