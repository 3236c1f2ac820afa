"""Shared fixtures: a real Mosquitto per test, and a guard against swallowed errors."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

import edge.panel.users
import edge.writer_proc
from tests.central.conftest import Central, fresh_pg_url, make_central
from tests.central.pg import shared_cluster
from vitrine.broker import BrokerProcess, BrokerSettings, free_port, start_broker
from vitrine.provisioning import Provisioner

STORE = "store-test"

# CI runs each property test on the same examples every time (derandomize), so a landing
# is judged on the code, not on the draw; local runs keep exploring new examples.
# Neither times examples: a per-example deadline and the "input generation is slow" check
# judge the machine, not the code, and fail on a loaded 2-core box (four test processes
# beside other work). Every example still runs and is checked.
_ON_A_BUSY_MACHINE = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
hypothesis_settings.register_profile("default", **_ON_A_BUSY_MACHINE)
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True,
                                     **_ON_A_BUSY_MACHINE)
hypothesis_settings.load_profile(os.environ.get("VITRINE_HYPOTHESIS_PROFILE", "default"))

# Test override: panel passwords hashed in this process use scrypt at n=2**12 instead of
# 2**15 (same code, same checks, an eighth of the cost; ~200 hash checks in a run).
# Unknown names are checked against a dummy hash of the same cost, as in production.
# Edges started as processes keep the production cost; test_panel_login checks that
# production's default is untouched.
TEST_PASSWORD_METHOD = "scrypt:4096:8:1"
edge.panel.users.PASSWORD_METHOD = TEST_PASSWORD_METHOD

# Test override: an edge started in this process forks its writer from a forkserver that
# has the writer's modules loaded, instead of starting an interpreter for it (~0.5 s of CPU
# per edge, a few hundred edges a run). The child runs the same code on the same pipe;
# edges run as processes (tests/edge/edge_process.py, the CLI) keep production's "spawn".
edge.writer_proc.START_METHOD = "forkserver"
multiprocessing.get_context("forkserver").set_forkserver_preload(
    ["edge.writer_proc", "edge.writer_core", "edge.db"])


#: Files of one or two tests that run a whole store for tens of seconds. `make test` hands
#: files to its processes in collection order (--no-loadscope-reorder): these go first, so
#: that no process is left running one of them alone at the end.
LONG_FILES = ("tests/test_demo.py", "tests/broker/test_acl_matrix.py",
              "tests/test_store_setup.py", "tests/broker/test_embedded_broker.py",
              "tests/central/test_consent_integrity.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@dataclass
class TestBroker:
    """A running Mosquitto with the production config rendered on a free port."""

    __test__ = False
    process: BrokerProcess
    provisioner: Provisioner
    store_id: str

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def data_dir(self) -> Path:
        return self.process.settings.data_dir

    def add(self, name: str, role: str = "nfc_reader") -> str:
        """Provision ``name`` and reload the broker; return its password (== name + '-pw')."""
        password = f"{name}-pw"
        self.provisioner.add(name, role, password, replace=True)
        self.process.reload()
        return password

    def add_many(self, entries: list[tuple[str, str]]) -> dict[str, str]:
        creds = {name: f"{name}-pw" for name, _ in entries}
        self.provisioner.add_many([(n, r, creds[n]) for n, r in entries])
        self.process.reload()
        return creds

    def restart(self) -> None:
        self.process.stop()
        self.process = start_broker(self.process.settings, log_file=self.data_dir / "broker.log",
                                    allow_embedded=False)


def make_broker(tmp_path: Path, store_id: str = STORE, **overrides) -> TestBroker:
    data_dir = tmp_path / "broker"
    settings = BrokerSettings(data_dir=data_dir, port=free_port(), **overrides)
    prov = Provisioner(data_dir, store_id)
    prov.add_many([("edge", "edge", "edge-pw"), ("observer", "observer", "observer-pw")])
    proc = start_broker(settings, log_file=data_dir / "broker.log", allow_embedded=False)
    return TestBroker(proc, prov, store_id)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[TestBroker]:
    tb = make_broker(tmp_path)
    try:
        yield tb
    finally:
        tb.process.stop()


@pytest.fixture(scope="session")
def pg_cluster():
    """One throw-away PostgreSQL cluster for the whole run (fails, never skips, without it)."""
    return shared_cluster()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """Central's database for one test: a new SQLite file or a new PostgreSQL schema."""
    if request.param == "postgres":
        return {"database_url": fresh_pg_url(request.getfixturevalue("pg_cluster")),
                "pg_pool_max": 4}
    return {"sqlite_path": str(tmp_path / "central.db")}


@pytest.fixture
def central(backend: dict) -> Iterator[Central]:
    """Central served over HTTP on ``backend``: every test using it runs on both databases."""
    c = make_central(backend)
    try:
        yield c
    finally:
        for s in c.servers:
            s.stop()
        c.db.close()


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_swallowed_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if code logged an exception or a thread died, even if it carried on.

    Tests that provoke errors on purpose mark themselves ``@pytest.mark.allow_errors``.
    """
    collector = _ErrorCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    thread_errors: list[threading.ExceptHookArgs] = []
    previous_hook = threading.excepthook
    threading.excepthook = thread_errors.append
    try:
        yield
    finally:
        threading.excepthook = previous_hook
        root.removeHandler(collector)
    if request.node.get_closest_marker("allow_errors"):
        return
    swallowed = [r for r in collector.records if r.exc_info]
    if swallowed or thread_errors:
        msgs = [f"{r.name}: {r.getMessage()}" for r in swallowed]
        msgs += [f"thread {a.thread.name if a.thread else '?'}: {a.exc_value!r}"
                 for a in thread_errors]
        pytest.fail("exception swallowed during test:\n" + "\n".join(msgs))
