"""bench.soak: a long steady load; does the edge stay flat (memory, files, latency, disk)?

Method. ``--devices`` publisher processes (default 10, NFC readers and QR scanners
alternating) publish at a steady total of ``--rate`` events/s (default 1,500) for
``--duration-s`` seconds (default 600), each message stamped with its send time;
the edge (``python -m edge``, default settings, writer process on) stores them and
publishes interest events, which an in-store observer timestamps.

Reported, one JSON line:

* ``processes``: for the edge and each of its child processes (the writer), RSS
  (``rss_mb``) and open files (``open_files``) at the start of the load and at the end;
* ``p99_ms_per_minute``: p99 of device -> in-store event latency, minute by minute
  (and ``p50_ms``/``p99_ms`` over the whole run);
* ``db_bytes_per_event``: live database bytes (pages minus free pages) / events
  stored, and ``file_bytes_per_event`` for the file on disk including its WAL;
* ``events_per_s`` achieved, ``lost`` (acknowledged by the broker, not stored).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from contract.topics import device_topic, event_topic

from .harness import (
    GTIN,
    STORE,
    TAG_UID,
    client,
    connect,
    device_channel,
    layout,
    machine,
    start_bench_broker,
)
from .ingest import spawn_edge


def _publisher(port: int, device: str, rate: float, stop_at: float, q: Any) -> None:
    c = client(device)
    c.max_inflight_messages_set(100)
    acked = [0]
    c.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
    connect(c, port)
    channel = device_channel(device)
    topic = device_topic(STORE, device, channel)
    t0 = time.time()
    n = 0
    while True:
        now = time.time()
        if now >= stop_at:
            break
        due = int((now - t0) * rate) + 1
        while n < due:
            n += 1
            body: dict[str, Any] = {"msg_id": f"{device}-{n}", "ts": time.time()}
            if channel == "nfc":
                body["uid"] = TAG_UID
            else:
                body["text"] = f"https://id.gs1.org/01/{GTIN}"
            c.publish(topic, json.dumps(body), qos=1)
        time.sleep(0.005)
    deadline = time.time() + 60
    while acked[0] < n and time.time() < deadline:
        time.sleep(0.01)
    c.disconnect()
    c.loop_stop()
    q.put({"device": device, "sent": n, "acked": acked[0]})


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(x) for x in (task / "children").read_text().split()]
    return out


def _proc_stats(pid: int) -> dict[str, Any]:
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return {"pid": pid, "rss_mb": round(rss_kb / 1024, 1),
            "open_files": len(os.listdir(f"/proc/{pid}/fd"))}


def _snapshot(pid: int) -> dict[str, dict[str, Any]]:
    snap = {"edge": _proc_stats(pid)}
    for i, child in enumerate(_children(pid)):
        with contextlib.suppress(OSError):
            snap[f"child{i}"] = _proc_stats(child)
    return snap


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 3)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.soak")
    ap.add_argument("--duration-s", type=float, default=600.0)
    ap.add_argument("--rate", type=float, default=1500.0, help="events/s in total")
    ap.add_argument("--devices", type=int, default=10)
    args = ap.parse_args(argv)
    devices = [f"dev-{i}" for i in range(args.devices)]
    broker, workdir = start_bench_broker(devices)
    db = workdir / "edge.db"
    layout_file = workdir / "layout.json"
    layout_file.write_text(json.dumps(layout(devices)))
    env = {**os.environ, "VITRINE_STORE_ID": STORE, "VITRINE_DB_PATH": str(db),
           "VITRINE_MQTT_PORT": str(broker.port), "VITRINE_MQTT_PASSWORD": "edge-pw",
           "VITRINE_LAYOUT_PATH": str(layout_file), "VITRINE_PANEL_PORT": "0"}
    samples: list[tuple[float, float]] = []  # (receive time, latency ms)
    lock = threading.Lock()
    observer = client("observer")

    def on_message(cl: Any, userdata: Any, msg: Any) -> None:
        now = time.time()
        batch = [(now, (now - ev["device_ts"]) * 1000) for ev in json.loads(msg.payload)
                 if ev.get("device_ts")]
        with lock:
            samples.extend(batch)

    observer.on_message = on_message
    connect(observer, broker.port)
    observer.subscribe(event_topic(STORE, "interest"), qos=1)
    edge = spawn_edge(env, workdir)
    try:
        time.sleep(3.0)
        t0 = time.time()
        stop_at = t0 + args.duration_s
        q: Any = mp.Queue()
        procs = [mp.Process(target=_publisher,
                            args=(broker.port, d, args.rate / len(devices), stop_at, q),
                            daemon=True) for d in devices]
        for p in procs:
            p.start()
        time.sleep(5.0)
        start = _snapshot(edge.pid)
        results = [q.get(timeout=args.duration_s + 180) for _ in procs]
        acked = sum(r["acked"] for r in results)
        conn = sqlite3.connect(db, timeout=30)
        deadline = time.time() + 120
        while True:
            (stored,) = conn.execute("SELECT count(*) FROM events").fetchone()
            if stored >= acked or time.time() > deadline:
                break
            time.sleep(0.2)
        elapsed = time.time() - t0
        end = _snapshot(edge.pid)
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        conn.close()
        wal = Path(str(db) + "-wal")
        file_bytes = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    finally:
        observer.disconnect()
        observer.loop_stop()
        edge.send_signal(signal.SIGTERM)
        edge.wait(30)
        broker.stop()
    with lock:
        minutes: dict[int, list[float]] = {}
        for at, ms in samples:
            if at >= t0:
                minutes.setdefault(int((at - t0) // 60), []).append(ms)
        lat = [ms for at, ms in samples if at >= t0]
    print(json.dumps({
        "duration_s": args.duration_s, "rate_events_per_s": args.rate,
        "devices": args.devices, "events_per_s": round(stored / elapsed, 1),
        "sent": acked, "stored": stored, "lost": max(0, acked - stored),
        "processes": {name: {"start": start.get(name), "end": end.get(name)}
                      for name in sorted(set(start) | set(end))},
        "p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99),
        "p99_ms_per_minute": [_pct(minutes[m], 0.99) for m in sorted(minutes)],
        "db_bytes_per_event": round((pages - free) * page / max(1, stored), 1),
        "file_bytes_per_event": round(file_bytes / max(1, stored), 1),
        "machine": machine()}))


if __name__ == "__main__":
    main()
