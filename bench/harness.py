"""Shared set-up for the benchmarks: a broker, credentials, load generators.

Load generators are separate processes (one paho client each, QoS 1, bounded
in-flight window, every publish's rc checked) so that the generator is not
the bottleneck being measured and does not share the GIL with the consumer.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract.topics import device_topic
from vitrine.broker import BrokerProcess, BrokerSettings, free_port, start_broker
from vitrine.provisioning import Provisioner

STORE = "store-bench"
GTIN = "09506000134352"
TAG_UID = "04a1b2c3d4e5f6"


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def device_channel(device: str) -> str:
    """Numbered devices alternate NFC readers (odd) and QR scanners (even); others scan QR.

    Each publishes its own channel only, as the broker's ACL requires.
    """
    tail = device.rsplit("-", 1)[-1]
    return "nfc" if tail.isdigit() and int(tail) % 2 else "qr"


def device_kind(device: str) -> str:
    return "nfc_reader" if device_channel(device) == "nfc" else "qr_scanner"


def ensure_bytecode() -> None:
    """Compile the project's modules, as an installed edge has them, before timing a start.

    ``pip install`` (and a distribution package) writes bytecode at install time; a
    checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (as on the project's machines)
    compiles every module again at every start: ~0.1 s of the edge's start-up,
    3 % of a 100,000-event ``bench.ingest`` run, that no store pays.
    """
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in ("contract", "edge", "vitrine"):
        compileall.compile_dir(root / package, quiet=2)


def start_bench_broker(devices: list[str]) -> tuple[BrokerProcess, Path]:
    tmp = Path(tempfile.mkdtemp(prefix="vitrine-bench-"))
    settings = BrokerSettings(data_dir=tmp / "broker", port=free_port(), persistence=False)
    prov = Provisioner(settings.data_dir, STORE)
    entries = [("edge", "edge", "edge-pw"), ("bare", "edge", "bare-pw"),
               ("observer", "observer", "observer-pw")]
    entries += [(d, device_kind(d), f"{d}-pw") for d in devices]
    prov.add_many(entries)
    return start_broker(settings, log_file=tmp / "broker.log", allow_embedded=False), tmp


def layout(devices: list[str]) -> dict[str, Any]:
    return {"store_id": STORE,
            "zones": [{"id": "z1", "name": "Zone 1"}],
            "products": [{"gtin": GTIN, "name": "Trail shoe", "brand": "Acme",
                          "category": "shoes", "price_cents": 8999, "currency": "EUR"}],
            "devices": [{"id": d, "kind": device_kind(d), "zone": "z1", "shelf": "s1"}
                        for d in devices],
            "tags": [{"uid": TAG_UID, "gtin": GTIN, "zone": "z1", "shelf": "s1"}]}


def client(name: str) -> mqtt.Client:
    """A stock paho client for principal ``name`` (password ``{name}-pw``)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.username_pw_set(name, f"{name}-pw")
    return c


def connect(c: mqtt.Client, port: int, *, clean: bool = True,
            receive_max: int | None = None) -> None:
    import socket
    import threading

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    if receive_max:
        props.ReceiveMaximum = receive_max
    ok = threading.Event()

    def on_connect(cl, userdata, flags, rc, properties):
        sock = cl.socket()
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ok.set()

    c.on_connect = on_connect
    c.connect("127.0.0.1", port, clean_start=clean, properties=props)
    c.loop_start()
    if not ok.wait(10):
        raise TimeoutError("connect")


def payloads(device: str, n: int, start: int = 0) -> list[bytes]:
    """NFC taps of a registered tag, or QR scans of a GS1 Digital Link (by device)."""
    out = []
    nfc = device_channel(device) == "nfc"
    for i in range(start, start + n):
        if nfc:
            msg = {"msg_id": f"{device}-{i}", "ts": time.time(), "uid": TAG_UID}
        else:
            msg = {"msg_id": f"{device}-{i}", "ts": time.time(),
                   "text": f"https://id.gs1.org/01/{GTIN}"}
        out.append(json.dumps(msg).encode())
    return out


def _publisher(port: int, device: str, n: int, rate: float | None, inflight: int,
               result: Any) -> None:
    c = client(device)
    c.max_inflight_messages_set(inflight)
    done = [0]  # acknowledged by the broker (on_publish runs in paho's thread)
    c.on_publish = lambda *a: done.__setitem__(0, done[0] + 1)
    connect(c, port)
    t0 = time.perf_counter()
    refused = 0
    msgs = payloads(device, n)
    for i, body in enumerate(msgs):
        topic = device_topic(STORE, device, device_channel(device))
        while True:
            info = c.publish(topic, body, qos=1)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                break
            refused += 1  # back-pressure: paho's queue is full, wait and retry
            time.sleep(0.001)
        # Never more than a window of unacknowledged messages in paho's queue.
        while i + 1 - done[0] > inflight * 4:
            time.sleep(0.0005)
        if rate:
            ahead = (i + 1) / rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    deadline = time.time() + 120
    while done[0] < n and time.time() < deadline:
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    result.put({"device": device, "acked": done[0], "sent": n, "retries": refused,
                "elapsed_s": elapsed})


def run_publishers(port: int, devices: list[str], per_device: int, *,
                   rate_per_device: float | None = None, inflight: int = 200,
                   wait: bool = True) -> tuple[list[mp.Process], Any]:
    q: Any = mp.Queue()
    procs = [mp.Process(target=_publisher,
                        args=(port, d, per_device, rate_per_device, inflight, q), daemon=True)
             for d in devices]
    for p in procs:
        p.start()
    if wait:
        collect(procs, q)
    return procs, q


def collect(procs: list[mp.Process], q: Any) -> list[dict[str, Any]]:
    results = [q.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(10)
    short = [r for r in results if r["acked"] != r["sent"]]
    if short:
        raise RuntimeError(f"publishers not fully acknowledged: {short}")
    return results
