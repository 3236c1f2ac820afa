"""End-to-end part of bench.signage: tap -> spotlight frame, price feed -> labels acked.

Real parts: Mosquitto, the edge as a separate process (writer process on),
the screen's player with its device session (``signage.player``) and the
simulated labels (``firmware_sim.shelf_label``), each label its own MQTT
identity.

* ``tap_to_frame_p99_ms``: a probe scanner in the screen's zone publishes a
  scan (products alternate, so each one changes the spotlight) every 100 ms
  while background readers keep ``BACKGROUND_RATE`` events/s flowing; the time
  from publish to the player's spotlight frame rendered (``render`` done, the
  frame handed to the sink). Same run, same probes: ``tap_to_event_p99_ms``, the
  publish -> enriched ``events/interest`` received by an observer (the edge's
  own latency, bench.latency's figure), and the ratio of the two.
* ``labels_p99_s``: ``BENCH_LABELS`` labels (default 5,000, the issue's figure)
  over 1,000 products, so every product is on five labels; a price feed
  changing all 1,000 prices is applied in one transaction
  (``edge.feed_apply.apply_prices`` + ``materialise``: what ``edge.sync`` does
  with a pulled price page); per affected label (all of them), time from that
  commit to its ack committed at the edge (``shelf_labels.acked_at``).
  ``labels_render_s``: the bare render + pack time of the same 1,000 bitmaps
  in this process (the raw lower bound of that pipeline).

The labels are ``firmware_sim.label_swarm`` swarms, one process per core: every
label is its own MQTT client with its own credentials, ACL and persistent session
(the broker holds 5,000 authenticated connections, the edge sends 5,000 commands
and commits 5,000 reports), but the simulator drives all of a process's sockets
from one thread instead of the device kit's three threads per label (15,000
threads drowned a 2-core machine: docs/benchmarks.md). They connect before the
edge starts, so each has its session when the edge sends the first bitmaps, and
the tap measurement starts once every label shows its bitmap (the initial fan-out
is not mixed into it).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import signal
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from contract.gs1 import gtin_check_digit
from contract.mqtt_wire import VitrineClient
from contract.session import DeviceSession
from contract.topics import device_topic, event_topic
from edge.feed_apply import apply_prices, materialise
from edge.label_render import LabelContent, render_and_pack
from edge.rules import Rules
from firmware_sim.label_swarm import LabelSwarm
from signage.cache import ScreenCache
from signage.player import Player
from signage.profiles import LANDSCAPE

from .harness import STORE, run_publishers, start_bench_broker
from .ingest import spawn_edge

PROBES = int(os.environ.get("BENCH_PROBES", "200"))
LABELS = int(os.environ.get("BENCH_LABELS", "5000"))
PRODUCTS = 1000
BACKGROUND_RATE = 1000.0
SCREEN = "sign-bench"


def _gtin(n: int) -> str:
    body = f"0950600{n:06d}"
    return body + str(gtin_check_digit(body))


def _p99(samples: list[float]) -> float:
    return round(statistics.quantiles(samples, n=100, method="inclusive")[98], 3)


class _TimedSink:
    """Records when each spotlight frame was rendered (the renderer ran before show())."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.shown: list[tuple[str, float]] = []

    def show(self, image: Any, item: Any, trigger: str) -> None:
        if trigger == "tap":
            with self.cond:
                self.shown.append((item.gtin, time.perf_counter()))
                self.cond.notify_all()


def _layout(background: list[str]) -> dict[str, Any]:
    products = [{"gtin": _gtin(n), "name": f"Produit {n} été", "brand": "Vitrine",
                 "category": "bench", "price_cents": 1000 + n, "currency": "EUR"}
                for n in range(PRODUCTS)]
    devices = [{"id": d, "kind": "nfc_reader", "zone": "z2", "shelf": "s1"} for d in background]
    devices += [{"id": "probe", "kind": "qr_scanner", "zone": "z1", "shelf": "s1"},
                {"id": SCREEN, "kind": "signage", "zone": "z1", "shelf": None}]
    devices += [{"id": f"esl-{n:05d}", "kind": "shelf_label", "zone": "z1", "shelf": None,
                 "gtin": products[n % PRODUCTS]["gtin"]} for n in range(LABELS)]
    return {"store_id": STORE, "zones": [{"id": "z1", "name": "Screens"},
                                          {"id": "z2", "name": "Background"}],
            "products": products, "devices": devices, "tags": []}


def _taps(port: int, sink: _TimedSink) -> tuple[list[float], list[float]]:
    event_at: dict[str, float] = {}

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        now = time.perf_counter()
        for ev in json.loads(msg.payload):
            if ev.get("device_id") == "probe":
                event_at.setdefault(str(ev.get("device_ts")), now)

    observer = VitrineClient("observer")
    observer.username_pw_set("observer", "observer-pw")
    observer.on_message = on_message
    observer.connect("127.0.0.1", port)
    observer.subscribe(event_topic(STORE, "interest"), qos=1)
    observer.loop_start()
    probe = VitrineClient("probe")
    probe.username_pw_set("probe", "probe-pw")
    probe.connect("127.0.0.1", port)
    probe.loop_start()
    time.sleep(1.0)
    frames, events = [], []
    for i in range(PROBES):
        gtin = _gtin(i % 2)
        ts = round(time.time(), 6)
        with sink.cond:
            before = len(sink.shown)
        t0 = time.perf_counter()
        probe.publish(device_topic(STORE, "probe", "qr"), json.dumps(
            {"msg_id": f"p{i}-{time.time_ns()}", "ts": ts,
             "text": f"https://id.gs1.org/01/{gtin}"}), qos=1)
        with sink.cond:
            ok = sink.cond.wait_for(lambda b=before, g=gtin: any(
                s[0] == g for s in sink.shown[b:]), timeout=5)
            if ok:
                frames.append((next(t for g, t in sink.shown[before:] if g == gtin) - t0)
                              * 1000)
        time.sleep(0.05)
        if str(ts) in event_at:
            events.append((event_at[str(ts)] - t0) * 1000)
    for c in (observer, probe):
        c.loop_stop()
        c.disconnect()
    return frames, events


def _label_worker(port: int, devices: list[str], connected: Any, stop: Any) -> None:
    """One process (one thread) driving a share of the labels, each its own MQTT identity."""
    swarm = LabelSwarm("127.0.0.1", port, STORE, [(d, f"{d}-pw") for d in devices]).start()
    while not stop.wait(0.5):
        connected.value = swarm.connected
    swarm.stop()


def _start_labels(port: int) -> tuple[list[Any], list[Any], Any]:
    devices = [f"esl-{n:05d}" for n in range(LABELS)]
    workers = max(1, min(os.cpu_count() or 1, 4, LABELS // 500 or 1))
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    counts = [ctx.Value("i", 0) for _ in range(workers)]
    procs = [ctx.Process(target=_label_worker, args=(port, devices[i::workers], counts[i], stop),
                         daemon=True) for i in range(workers)]
    for p in procs:
        p.start()
    return procs, counts, stop


def _wait_all_current(db: Path, timeout: float = 600) -> float:
    """Seconds until every label acked the bitmap the edge wants it to show."""
    conn = sqlite3.connect(db, timeout=30)
    t0 = time.time()
    try:
        while time.time() < t0 + timeout:
            (n,) = conn.execute("SELECT count(*) FROM shelf_labels WHERE want_hash IS NOT NULL "
                                "AND acked_hash = want_hash").fetchone()
            if n >= LABELS:
                break
            time.sleep(0.5)
    finally:
        conn.close()
    return time.time() - t0


def _labels(db: Path) -> tuple[list[float], int, float]:
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    now = time.time()
    feed = [{"store_id": "*", "gtin": _gtin(n), "kind": "regular", "valid_from": 0.0,
             "valid_to": None, "price_cents": 500 + n, "currency": "EUR", "label": None,
             "version": 1} for n in range(PRODUCTS)]
    conn.execute("BEGIN IMMEDIATE")
    gtins = apply_prices(conn, feed, False)
    materialise(conn, STORE, Rules(), gtins, now)
    conn.execute("COMMIT")
    t0 = time.time()
    while time.time() < t0 + 600:
        rows = conn.execute("SELECT acked_at FROM shelf_labels WHERE acked_price_cents = "
                            "want_price_cents AND acked_hash = want_hash AND acked_at >= ?",
                            (now,)).fetchall()
        if len(rows) >= LABELS:
            break
        time.sleep(0.2)
    delays = [r[0] - now for r in rows]
    conn.close()
    t_render = time.perf_counter()
    for n in range(PRODUCTS):
        render_and_pack(LabelContent(_gtin(n), f"Produit {n} été", "Vitrine", 500 + n, "EUR"))
    return delays, len(rows), time.perf_counter() - t_render


def _raise_fd_limit() -> None:
    """A thousand labels are a thousand sockets in the broker and in the label processes
    (which inherit the limit): lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def run() -> dict[str, Any]:
    _raise_fd_limit()
    background = [f"bg-{i}" for i in range(4)]
    broker, tmp = start_bench_broker(background)
    workdir = Path(tempfile.mkdtemp(prefix="vitrine-bench-signage-"))
    layout = _layout(background)
    from vitrine.provisioning import Provisioner
    Provisioner(broker.settings.data_dir, STORE).add_many(
        [(d["id"], d["kind"], f"{d['id']}-pw") for d in layout["devices"]
         if d["kind"] != "nfc_reader"])
    broker.reload()
    time.sleep(0.5)
    (workdir / "layout.json").write_text(json.dumps(layout))
    env = {**os.environ, "VITRINE_STORE_ID": STORE, "VITRINE_DB_PATH": str(workdir / "edge.db"),
           "VITRINE_MQTT_PORT": str(broker.port), "VITRINE_MQTT_PASSWORD": "edge-pw",
           "VITRINE_LAYOUT_PATH": str(workdir / "layout.json"), "VITRINE_PANEL_PORT": "0",
           "VITRINE_SPOTLIGHT_MIN_SHOW_S": "0"}
    procs_labels, connected, stop_labels = _start_labels(broker.port)
    deadline = time.time() + 300
    while sum(c.value for c in connected) < LABELS and time.time() < deadline:
        time.sleep(0.5)
    labels_connected = sum(c.value for c in connected)
    edge = spawn_edge(env, workdir)
    deadline = time.time() + 60
    while not (workdir / "edge.db").exists() or time.time() < deadline - 57:
        if edge.poll() is not None or time.time() > deadline:
            broker.stop()
            raise RuntimeError(f"edge did not start; see {workdir / 'edge.log'}")
        time.sleep(0.1)
    labels_initial_s = _wait_all_current(workdir / "edge.db")
    sink = _TimedSink()
    session = DeviceSession("127.0.0.1", broker.port, STORE, SCREEN, f"{SCREEN}-pw",
                            kind="signage")
    player = Player(SCREEN, "z1", LANDSCAPE, ScreenCache(workdir / "screen"), sink)
    session.on_command(player.on_command)
    session.start(wait=10)
    time.sleep(2.0)
    procs, _ = run_publishers(broker.port, background, int(BACKGROUND_RATE / 4 * (PROBES * 0.2
                                                                                   + 30)),
                              rate_per_device=BACKGROUND_RATE / 4, wait=False)
    try:
        frames, events = _taps(broker.port, sink)
    finally:
        for p in procs:
            p.terminate()
    session.close(flush_timeout=1)
    try:
        delays, acked, render_s = _labels(workdir / "edge.db")
    finally:
        stop_labels.set()
        for p in procs_labels:
            p.join(30)
        edge.send_signal(signal.SIGTERM)
        edge.wait(30)
        broker.stop()
    out: dict[str, Any] = {
        "probes": PROBES, "frames_seen": len(frames), "background_events_per_s": BACKGROUND_RATE,
        "tap_to_frame_p50_ms": round(statistics.median(frames), 3) if frames else None,
        "tap_to_frame_p99_ms": _p99(frames) if len(frames) > 2 else None,
        "tap_to_event_p99_ms": _p99(events) if len(events) > 2 else None,
        "labels": LABELS, "labels_connected": labels_connected,
        "labels_initial_s": round(labels_initial_s, 3), "labels_acked": acked,
        "labels_p50_s": round(statistics.median(delays), 3) if delays else None,
        "labels_p99_s": _p99(delays) if len(delays) > 2 else None,
        "labels_render_s": round(render_s, 3)}
    if out["tap_to_frame_p99_ms"] and out["tap_to_event_p99_ms"]:
        out["tap_to_frame_ratio"] = round(out["tap_to_frame_p99_ms"]
                                          / out["tap_to_event_p99_ms"], 2)
    return out
