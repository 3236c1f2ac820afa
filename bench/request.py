"""bench.request: a kiosk's request -> the edge's reply, under store load.

A kiosk asks the edge (``ping`` and ``product``, alternating) every 20 ms while
background publishers keep 1,000 events/s flowing through the same edge. Three
round trips are measured in the same run, in this order:

* ``p50_ms``/``p99_ms``: ``DeviceSession.request`` as a kiosk uses it (the kit's
  buffer and sender thread, the edge's router in its writer, the reply after the
  writer's commit);
* ``raw_p50_ms``/``raw_p99_ms``: the same request envelope published by a bare
  tuned client as the kiosk (what the edge costs without the kit's session);
* ``bare_p50_ms``/``bare_p99_ms``: the broker alone: a QoS 1 message to an echo
  client that publishes it straight back (two broker hops, like request + reply).

``ratio_p99`` is ``p99_ms / bare_p99_ms``. The goal is p99 under 20 ms.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from contract.mqtt_wire import VitrineClient
from contract.requests import build_request
from contract.session import DeviceSession
from contract.topics import PREFIX, reply_topic, request_topic

from .harness import GTIN, STORE, layout, machine, run_publishers, start_bench_broker
from .ingest import prepare_edge, spawn_edge

PROBES = int(os.environ.get("BENCH_PROBES", "1000"))
INTERVAL_S = 0.02
BACKGROUND_RATE = 1000.0
KIOSK = "kiosk-bench"
ECHO = "bare-echo"


def _percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return round(qs[49], 3), round(qs[98], 3)


def _probe_bodies() -> list[tuple[str, dict]]:
    return [("ping", {}) if i % 2 else ("product", {"gtin": GTIN}) for i in range(PROBES)]


def measure_session(port: int) -> list[float]:
    s = DeviceSession("127.0.0.1", port, STORE, KIOSK, f"{KIOSK}-pw", kind="kiosk",
                      heartbeat_s=3600)
    if not s.start(wait=10):
        raise TimeoutError("kiosk could not connect")
    out: list[float] = []
    try:
        for _ in range(5):  # warm up: subscriptions in place, caches hot
            s.request("ping", {}, timeout=5)
        for op, body in _probe_bodies():
            t0 = time.perf_counter()
            s.request(op, body, timeout=5)
            out.append((time.perf_counter() - t0) * 1000)
            time.sleep(INTERVAL_S)
    finally:
        s.close(2)
    return out


def _round_trips(port: int, user: str, client_id: str, out_topic: str, in_topic: str,
                 make_body: Callable[[int], tuple[str, bytes]]) -> list[float]:
    """Publish QoS 1 probes on ``out_topic``; time each until its key comes back on ``in_topic``."""
    sent: dict[str, float] = {}
    got: list[float] = []
    arrived = threading.Condition()
    c = VitrineClient(client_id)
    c.username_pw_set(user, f"{user}-pw")

    def on_message(cl: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        key = json.loads(msg.payload).get("request_id")
        with arrived:
            t = sent.pop(key, None)
            if t is not None:
                got.append((now - t) * 1000)
                arrived.notify_all()

    c.on_message = on_message
    _connect_and_subscribe(c, port, in_topic)
    try:
        for i in range(PROBES + 5):
            key, body = make_body(i)
            with arrived:
                sent[key] = time.perf_counter()
            c.publish(out_topic, body, qos=1)
            with arrived:
                if not arrived.wait_for(lambda k=key: k not in sent, 5):
                    raise RuntimeError(f"probe {key} never came back")
            time.sleep(INTERVAL_S)
    finally:
        c.disconnect()
        c.loop_stop()
    return got[5:]  # the first five warm up


def _connect_and_subscribe(c: mqtt.Client, port: int, topic: str) -> None:
    ok, subscribed = threading.Event(), threading.Event()
    c.on_connect = lambda *a: ok.set()
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not ok.wait(10):
        raise TimeoutError("connect")
    c.subscribe(topic, qos=1)
    if not subscribed.wait(10):
        raise TimeoutError("subscribe")


def measure_raw(port: int) -> list[float]:
    bodies = _probe_bodies()

    def body(i: int) -> tuple[str, bytes]:
        op, b = bodies[i % len(bodies)]
        rid = f"raw-{time.time_ns()}-{i}"
        return rid, json.dumps(build_request(op, b, rid)).encode()

    return _round_trips(port, KIOSK, f"{KIOSK}-raw", request_topic(STORE, KIOSK),
                        reply_topic(STORE, KIOSK), body)


def measure_bare(port: int) -> list[float]:
    """Two broker hops with no edge: an echo client republishes each probe at once."""
    ping, pong = f"{PREFIX}/{STORE}/edge/bench/ping", f"{PREFIX}/{STORE}/edge/bench/pong"
    echo = VitrineClient(ECHO)
    echo.username_pw_set(ECHO, f"{ECHO}-pw")
    echo.on_message = lambda cl, u, msg: cl.publish(pong, msg.payload, qos=1)
    _connect_and_subscribe(echo, port, ping)
    try:
        return _round_trips(port, "bare", "bare", ping, pong,
                            lambda i: (f"bare-{i}", json.dumps({"request_id": f"bare-{i}",
                                                                "op": "ping"}).encode()))
    finally:
        echo.disconnect()
        echo.loop_stop()


def main() -> None:
    background = ["bg-0", "bg-1"]
    broker, workdir = start_bench_broker(background)
    try:
        broker_dir = broker.settings.data_dir
        from vitrine.provisioning import Provisioner

        Provisioner(broker_dir, STORE).add_many([(KIOSK, "kiosk", f"{KIOSK}-pw"),
                                                 (ECHO, "edge", f"{ECHO}-pw")])
        broker.reload()
        env, _db = prepare_edge(broker.port, workdir, background)
        store = layout(background)
        store["devices"].append({"id": KIOSK, "kind": "kiosk", "zone": "z1", "shelf": None})
        (workdir / "layout.json").write_text(json.dumps(store))  # seeded at the next start
        edge = spawn_edge(env, workdir)
        time.sleep(2.0)
        duration = PROBES * INTERVAL_S * 4 + 40
        per_device = int(BACKGROUND_RATE / len(background) * duration)
        procs, _ = run_publishers(broker.port, background, per_device,
                                  rate_per_device=BACKGROUND_RATE / len(background), wait=False)
        time.sleep(1.0)
        try:
            kit = measure_session(broker.port)
            raw = measure_raw(broker.port)
            bare = measure_bare(broker.port)
        finally:
            for p in procs:
                p.terminate()
            edge.send_signal(signal.SIGTERM)
            edge.wait(30)
    finally:
        broker.stop()
    p50, p99 = _percentiles(kit)
    r50, r99 = _percentiles(raw)
    b50, b99 = _percentiles(bare)
    print(json.dumps({"probes": PROBES, "background_events_per_s": BACKGROUND_RATE,
                      "p50_ms": p50, "p99_ms": p99, "max_ms": round(max(kit), 3),
                      "raw_p50_ms": r50, "raw_p99_ms": r99,
                      "bare_p50_ms": b50, "bare_p99_ms": b99,
                      "ratio_p99": round(p99 / b99, 2) if b99 else None,
                      "machine": machine()}))


if __name__ == "__main__":
    main()
