"""Benchmark: events/s ingested into profiles by central, load generator included.

Runs real servers (``python -m central serve``: gunicorn with ``--workers``
worker processes) on SQLite, then on a throw-away PostgreSQL with one and with two
servers, and posts pre-encoded 500-event batches to them from a threaded load
generator on the same machine (round-robin over servers, as a load balancer would).
A response means the batch is committed, so events/s = events / wall time of the
whole run. The baseline, in the same run: one werkzeug process (``--server
werkzeug``, the development server) on PostgreSQL, same load.

    python -m bench.central_ingest [--events 60000] [--workers 4]

Last line of output: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from central.pg_sandbox import start_cluster

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "bench-admin-token"
STORE = "bench-store"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, token: str, body: bytes | None = None,
         timeout: float = 120) -> Any:
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"central worker exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/api/v1/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("central worker did not become healthy")


@contextmanager
def central_workers(count: int, env_extra: dict[str, str], serve_args: Sequence[str] = ()
                    ) -> Iterator[list[str]]:
    """``count`` servers sharing the database in ``env_extra``; yields base URLs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VITRINE_CENTRAL_ADMIN_TOKEN": ADMIN,
           "VITRINE_CENTRAL_DEFAULT_TRACKING_CONSENT": "true", **env_extra}
    ports = [free_port() for _ in range(count)]
    procs = [subprocess.Popen([sys.executable, "-m", "central", "serve", "--port", str(p),
                               *serve_args],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for p in ports]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for base, proc in zip(bases, procs, strict=True):
            _wait_healthy(base, proc)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def store_token(base: str, store: str = STORE) -> str:
    body = json.dumps({"kind": "store", "name": store}).encode()
    return http("POST", base + "/api/v1/admin/credentials", ADMIN, body)["token"]


def make_events(n: int, customers: int, store: str = STORE) -> list[dict[str, Any]]:
    """A realistic mix: each customer identified once, then taps products (some anonymous)."""
    now = time.time() - 86_400
    out: list[dict[str, Any]] = []
    for i in range(n):
        c = i % customers
        at = now + i * 0.001
        base = {"event_id": str(uuid.uuid4()), "store_id": store, "device_id": f"r{i % 40}",
                "zone": f"z{i % 8}", "session_id": f"s-{c}", "received_at": at, "device_ts": at}
        if i < customers:
            out.append({**base, "type": "presence", "customer_id": f"cust-{c}",
                        "method": "card"})
        else:
            out.append({**base, "type": "interest", "shelf": f"sh{i % 30}",
                        "gtin": f"{i % 5000:014d}", "product": {"category": f"cat{i % 40}"},
                        "customer_id": f"cust-{c}" if i % 2 else None, "source": "nfc"})
    return out


def run_load(bases: Sequence[str], token: str, events: list[dict[str, Any]],
             batch: int = 500, concurrency: int = 4) -> float:
    """Post ``events`` in batches round-robin over ``bases``; return events/s."""
    bodies = [json.dumps({"events": events[i:i + batch]}).encode()
              for i in range(0, len(events), batch)]
    jobs = [(bases[i % len(bases)], body) for i, body in enumerate(bodies)]

    def send(job: tuple[str, bytes]) -> int:
        resp = http("POST", job[0] + "/api/v1/events", token, job[1])
        if resp["rejected"]:
            raise RuntimeError(f"rejected: {resp['rejected'][:2]}")
        return len(resp["accepted"])

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        accepted = sum(pool.map(send, jobs))
    elapsed = time.perf_counter() - start
    if accepted != len(events):
        raise RuntimeError(f"accepted {accepted} of {len(events)}")
    return len(events) / elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers per server")
    args = parser.parse_args(argv)
    serve = ("--workers", str(args.workers))
    results: dict[str, Any] = {"events": args.events, "batch_size": 500,
                               "gunicorn_workers": args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"VITRINE_CENTRAL_SQLITE_PATH": str(Path(tmp) / "central.db")}
        with central_workers(1, env, serve) as bases:
            rate = run_load(bases, store_token(bases[0]), make_events(args.events,
                                                                      args.customers), 500, 2)
        results["sqlite_events_per_s"] = round(rate)
        print(f"sqlite, 1 server: {rate:,.0f} events/s", flush=True)
    cluster = start_cluster()
    try:
        url = cluster.create_schema("bench_ingest_werkzeug")
        with central_workers(1, {"VITRINE_CENTRAL_DATABASE_URL": url},
                             ("--server", "werkzeug")) as bases:
            baseline = run_load(bases, store_token(bases[0]),
                                make_events(args.events, args.customers), 500, 3)
        results["pg_werkzeug_baseline_events_per_s"] = round(baseline)
        print(f"postgresql, werkzeug baseline: {baseline:,.0f} events/s", flush=True)
        for servers in (1, 2):
            url = cluster.create_schema(f"bench_ingest_{servers}")
            with central_workers(servers, {"VITRINE_CENTRAL_DATABASE_URL": url},
                                 serve) as bases:
                rate = run_load(bases, store_token(bases[0]),
                                make_events(args.events, args.customers), 500, 2 * servers + 1)
            key = f"pg_{servers}_server{'s' if servers > 1 else ''}"
            results[f"{key}_events_per_s"] = round(rate)
            results[f"{key}_vs_werkzeug_ratio"] = round(rate / baseline, 2)
            print(f"postgresql, {servers} gunicorn server(s): {rate:,.0f} events/s", flush=True)
    finally:
        cluster.destroy()
    results["cpu_count"] = os.cpu_count()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
