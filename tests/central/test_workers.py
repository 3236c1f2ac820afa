"""Two central worker processes on one PostgreSQL behave as one central."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.central.conftest import ADMIN_TOKEN, STORE, channel_event, interest, presence
from tests.central.http import call
from tests.central.pg import shared_cluster
from vitrine.broker import free_port

ROOT = Path(__file__).resolve().parents[2]


def start_worker(url: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "VITRINE_CENTRAL_ADMIN_TOKEN": ADMIN_TOKEN,
           "VITRINE_CENTRAL_DEFAULT_TRACKING_CONSENT": "true", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "central", "--database-url", url, "serve",
                             "--port", str(port), "--workers", "2"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def wait_healthy(base: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"worker died: {log.read_text(errors='replace')[-2000:]}")
        try:
            if call("GET", base + "/api/v1/healthz", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("worker did not become healthy")


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    url = shared_cluster().create_schema(f"w_{uuid.uuid4().hex[:8]}")
    ports = [free_port(), free_port()]
    logs = [tmp_path_factory.mktemp("worker") / "stderr.log" for _ in ports]
    # Both start (and migrate) at once: the advisory lock makes one migrate, one wait.
    procs = [start_worker(url, p, log) for p, log in zip(ports, logs, strict=True)]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for base, proc, log in zip(bases, procs, logs, strict=True):
            wait_healthy(base, proc, log)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def test_concurrent_overlapping_batches_are_stored_exactly_once(workers: list[str]) -> None:
    a, b = workers
    status, cred = call("POST", a + "/api/v1/admin/credentials", ADMIN_TOKEN,
                        {"kind": "store", "name": STORE})
    assert status == 201
    token = cred["token"]
    now = time.time() - 3600
    events: list[dict[str, Any]] = []
    for c in range(20):
        events.append(presence(f"wc{c}", f"ws{c}", at=now + c))
        events += [interest(f"ws{c}", at=now + c + i, gtin=f"{i % 5 + 1:014d}")
                   for i in range(1, 150)]
        events += [channel_event("loyalty", "kiosk", at=now + c, customer_id=f"wc{c}",
                                 points=10, reference={"kind": "purchase", "id": f"t{c}-{i}"})
                   for i in range(10)]
    # Overlapping batches: each event is in two batches, each batch sent to both workers.
    batches = [events[i:i + 300] for i in range(0, len(events), 150)]
    jobs = [(base, batch) for batch in batches for base in (a, b)]
    random.Random(7).shuffle(jobs)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda job: call("POST", job[0] + "/api/v1/events", token, {"events": job[1]}),
            jobs))
    assert all(status == 200 for status, _ in results), results[:3]
    accepted = [eid for _, body in results for eid in body["accepted"]]
    assert len(accepted) == len(set(accepted)) == len(events)
    assert set(accepted) == {e["event_id"] for e in events}
    assert all(body["rejected"] == [] for _, body in results)
    for c in (0, 19):
        pa = call("GET", f"{a}/api/v1/customers/wc{c}", ADMIN_TOKEN)[1]
        pb = call("GET", f"{b}/api/v1/customers/wc{c}", ADMIN_TOKEN)[1]
        # Same view from both workers; interest scores decay with time and the two
        # reads are a moment apart, so scores are compared to 3 decimals.
        assert _without_scores(pa) == _without_scores(pb)
        assert [round(p["score"], 3) for p in pa["interests"]["products"]] == [
            round(p["score"], 3) for p in pb["interests"]["products"]]
        assert pa["loyalty_points"] == 100
        assert pa["identity"]["sessions"] == [f"ws{c}"]
        assert round(sum(p["score"] for p in pa["interests"]["products"])) == 149


def test_revocation_and_orders_are_shared(workers: list[str]) -> None:
    a, b = workers
    token = call("POST", a + "/api/v1/admin/credentials", ADMIN_TOKEN,
                 {"kind": "store", "name": "store-z"})[1]["token"]
    order = {"order_id": f"o-{uuid.uuid4()}", "channel": "kiosk", "created_at": time.time(),
             "fulfilment": {"type": "click_and_collect", "store_id": "store-z"},
             "lines": [{"gtin": "00000000000017", "quantity": 1}]}
    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(lambda base: call("POST", base + "/api/v1/orders", token,
                                                      order)[0], [a, b, a, b]))
    assert statuses == [200, 200, 200, 201]
    assert call("DELETE", b + "/api/v1/admin/credentials/store/store-z", ADMIN_TOKEN)[0] == 200
    assert call("GET", a + "/api/v1/stores/store-z/orders", token)[0] == 401


def _without_scores(profile: dict) -> dict:
    """The profile with its time-decayed scores removed (compared separately)."""
    out = dict(profile)
    interests = {k: [{kk: vv for kk, vv in item.items() if kk != "score"} for item in v]
                 if isinstance(v, list) else v
                 for k, v in profile.get("interests", {}).items()}
    out["interests"] = interests
    return out
