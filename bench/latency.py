"""bench.latency: tap published -> enriched interest event received in store.

A probe device publishes a QR scan every 20 ms (QoS 1) while background
publishers keep 1,000 events/s flowing through the edge; an in-store observer
subscribed to ``events/interest`` timestamps the enriched event carrying the
probe's ``device_ts``. Reported: ``p50_ms``/``p99_ms`` through the edge, and in
the same run the raw limit of the broker alone (the observer subscribed to the
probe's own topic, no edge): ``bare_p50_ms``/``bare_p99_ms`` with Vitrine's
tuned client, and ``stock_bare_*`` with stock paho clients (Nagle on) to show
what TCP_NODELAY is worth.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.mqtt_wire import VitrineClient
from contract.topics import device_topic, event_topic

from .harness import GTIN, STORE, machine, run_publishers, start_bench_broker
from .ingest import prepare_edge, spawn_edge

PROBES = int(os.environ.get("BENCH_PROBES", "1000"))
INTERVAL_S = 0.02
BACKGROUND_RATE = 1000.0


def _percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return round(qs[49], 3), round(qs[98], 3)


def measure(port: int, *, through_edge: bool, tuned: bool) -> list[float]:
    sent: dict[float, float] = {}
    got: list[float] = []
    done = threading.Event()

    def make(name: str) -> mqtt.Client:
        if tuned:
            c = VitrineClient(name)
        else:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        c.username_pw_set(name, f"{name}-pw")
        return c

    def on_message(cl, userdata, msg):
        now = time.perf_counter()
        body = json.loads(msg.payload)
        for ev in body if isinstance(body, list) else [body]:
            key = ev.get("device_ts") if through_edge else ev.get("ts")
            t = sent.pop(key, None)
            if t is not None:
                got.append((now - t) * 1000)
        if len(got) >= PROBES:
            done.set()

    observer = make("observer" if through_edge else "bare")
    observer.on_message = on_message
    subscribed = threading.Event()
    observer.on_subscribe = lambda *a: subscribed.set()
    _connect(observer, port)
    topic = event_topic(STORE, "interest") if through_edge else device_topic(STORE, "probe", "qr")
    observer.subscribe(topic, qos=1)
    subscribed.wait(5)
    probe = make("probe")
    _connect(probe, port)
    ptopic = device_topic(STORE, "probe", "qr")
    for i in range(PROBES):
        ts = time.time() + i * 1e-6  # unique key echoed back as device_ts
        body = json.dumps({"msg_id": f"p{time.time_ns()}-{i}", "ts": ts,
                           "text": f"https://id.gs1.org/01/{GTIN}"})
        sent[ts] = time.perf_counter()
        probe.publish(ptopic, body, qos=1)
        time.sleep(INTERVAL_S)
    done.wait(10)
    for c in (probe, observer):
        c.disconnect()
        c.loop_stop()
    if len(got) < PROBES * 0.99:
        raise RuntimeError(f"only {len(got)}/{PROBES} probes came back")
    return got


def _connect(c: mqtt.Client, port: int) -> None:
    """Connect as the client class decides: VitrineClient sets TCP_NODELAY, stock paho not."""
    ok = threading.Event()
    c.on_connect = lambda *a: ok.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    ok.wait(5)


def main() -> None:
    background = ["bg-0", "bg-1"]
    broker, workdir = start_bench_broker([*background, "probe"])
    try:
        env, _db = prepare_edge(broker.port, workdir, [*background, "probe"])
        edge = spawn_edge(env, workdir)
        time.sleep(2.0)
        duration = PROBES * INTERVAL_S * 3 + 30
        per_device = int(BACKGROUND_RATE / len(background) * duration)
        procs, _ = run_publishers(broker.port, background, per_device,
                                  rate_per_device=BACKGROUND_RATE / len(background), wait=False)
        time.sleep(1.0)
        try:
            edge_lat = measure(broker.port, through_edge=True, tuned=True)
            bare_lat = measure(broker.port, through_edge=False, tuned=True)
            stock_lat = measure(broker.port, through_edge=False, tuned=False)
        finally:
            for p in procs:
                p.terminate()
            edge.send_signal(signal.SIGTERM)
            edge.wait(30)
    finally:
        broker.stop()
    p50, p99 = _percentiles(edge_lat)
    b50, b99 = _percentiles(bare_lat)
    s50, s99 = _percentiles(stock_lat)
    print(json.dumps({"probes": PROBES, "background_events_per_s": BACKGROUND_RATE,
                      "p50_ms": p50, "p99_ms": p99, "max_ms": round(max(edge_lat), 3),
                      "bare_p50_ms": b50, "bare_p99_ms": b99,
                      "stock_bare_p50_ms": s50, "stock_bare_p99_ms": s99,
                      "machine": machine()}))


if __name__ == "__main__":
    main()
