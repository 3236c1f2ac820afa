"""``vitrine central serve`` runs gunicorn with several workers (issue 11, section 5).

Real processes on a free port, on SQLite and on PostgreSQL: the master forks
the configured number of workers, each answers, a killed worker is replaced,
SIGTERM stops everything cleanly, and ``--server werkzeug`` is one process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.central.conftest import ADMIN_TOKEN, fresh_pg_url, presence
from tests.central.http import call
from tests.central.test_workers import wait_healthy
from vitrine.broker import free_port

ROOT = Path(__file__).resolve().parents[2]


def children(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread of the server ended meanwhile
            continue
        out.update(int(x) for x in text)
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def database_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "postgres":
        return {"VITRINE_CENTRAL_DATABASE_URL": fresh_pg_url(request.getfixturevalue(
            "pg_cluster"))}
    return {"VITRINE_CENTRAL_SQLITE_PATH": str(tmp_path / "central.db")}


def start(env_extra: dict[str, str], log: Path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "VITRINE_CENTRAL_ADMIN_TOKEN": ADMIN_TOKEN,
           "PYTHONPATH": str(ROOT), **env_extra}
    proc = subprocess.Popen([sys.executable, "-m", "central", "serve", "--port", str(port),
                             *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=log.open("wb"), text=True)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, proc, log, timeout=60)
    return proc, base


@pytest.fixture
def gunicorn(database_env: dict[str, str], tmp_path: Path
             ) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    log = tmp_path / "central.log"
    proc, base = start(database_env, log, "--workers", "3", "--threads", "2")
    yield proc, base, log
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_serve_runs_gunicorn_with_several_workers(gunicorn: Any) -> None:
    proc, base, log = gunicorn
    deadline = time.monotonic() + 30
    while len(children(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = children(proc.pid)
    assert len(workers) == 3, log.read_text()
    assert "gunicorn" in log.read_text() and "Booting worker" in log.read_text()
    status, cred = call("POST", base + "/api/v1/admin/credentials", ADMIN_TOKEN,
                        {"kind": "store", "name": "store-a"})
    assert status == 201
    # Concurrent batches, all committed, whichever worker took them.
    batches = [[presence(f"c{i}", f"s{i}-{j}") for j in range(20)] for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda b: call("POST", base + "/api/v1/events", cred["token"],
                                               {"events": b}), batches))
    assert all(status == 200 and len(body["accepted"]) == 20 for status, body in results)
    # A worker that dies is replaced; the service keeps answering meanwhile.
    victim = sorted(workers)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (victim in children(proc.pid) or len(children(proc.pid)) < 3) and \
            time.monotonic() < deadline:
        assert call("GET", base + "/api/v1/healthz")[0] == 200
        time.sleep(0.1)
    assert len(children(proc.pid)) == 3 and victim not in children(proc.pid)
    # SIGTERM: graceful stop of master and workers.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(40) == 0
    assert "listening on" in proc.stdout.read()


def test_bad_requests_are_4xx_through_gunicorn(gunicorn: Any) -> None:
    _, base, _ = gunicorn
    host, port = base.split("//")[1].split(":")
    import http.client

    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/api/v1/events", body=b"[" * 100_000,
                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 400 and b"nested deeper" in resp.read()
    conn.close()
    assert call("GET", base + "/api/v1/stores/x/erasures?since=" + "9" * 30,
                ADMIN_TOKEN)[0] == 400


def test_werkzeug_server_on_request(database_env: dict[str, str], tmp_path: Path) -> None:
    proc, base = start(database_env, tmp_path / "central.log", "--server", "werkzeug")
    try:
        assert call("GET", base + "/api/v1/healthz")[0] == 200
        assert children(proc.pid) == set()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_bad_configuration_fails_before_forking(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VITRINE_CENTRAL_WORKERS": "0"}
    done = subprocess.run([sys.executable, "-m", "central", "serve", "--port",
                           str(free_port())], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "workers must be >= 1" in done.stderr
