"""Fixtures for the kiosk: a real edge database and kiosk service, and a kiosk flow on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract.kiosk_ops import KioskOpError
from edge.db import connect, migrate
from edge.kiosk_service import KioskService
from edge.seed import seed
from kiosk.flow import KioskFlow
from kiosk.payment import SimulatedPayments
from kiosk.store import StoreClient
from tests.edge.conftest import GTIN, LAYOUT

STORE = LAYOUT["store_id"]
KIOSK_ID = "kiosk-01"


@dataclass
class Ctx:
    device_id: str
    kind: str = "kiosk"


class InProcessRequester:
    """The edge's kiosk service called in this process (the flow's logic tests).

    The same service answers over MQTT in the window tests (``test_ui.py``); here
    ``down`` stands for an edge that does not answer.
    """

    def __init__(self, service: KioskService, device_id: str = KIOSK_ID) -> None:
        self.service = service
        self.ctx = Ctx(device_id)
        self.down = False
        self.calls: list[str] = []

    def request(self, op: str, body: dict[str, Any], *, timeout: float = 5.0,
                request_id: str | None = None) -> dict[str, Any]:
        self.calls.append(op)
        if self.down:
            raise TimeoutError(f"{op}: no reply in {timeout} s")
        try:
            return self.service.handle(self.ctx, op, body)
        except KioskOpError as exc:
            raise _Refusal(exc.code, exc.message) from None


class _Refusal(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Outbox:
    """The kiosk's device session as far as publishing reads goes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish_json(self, channel: str, payload: dict[str, Any]) -> str:
        self.sent.append((channel, payload))
        return payload["msg_id"]


def make_store_db(path: Path) -> Path:
    db = connect(path)
    migrate(db)
    seed(db, LAYOUT)
    now = time.time()
    db.conn.executemany("INSERT INTO sync_stock VALUES (?, ?, ?, ?)",
                        [(STORE, GTIN, 3, now), ("store-lyon", GTIN, 7, now),
                         ("web-warehouse", GTIN, 50, now)])
    db.conn.close()
    return path


def open_session(db_path: Path, session_id: str, customer_id: str | None,
                 device_id: str = KIOSK_ID) -> None:
    """A session as the pipeline opens it when a card is tapped at the kiosk."""
    conn = connect(db_path).conn
    now = time.time()
    conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                 (session_id, device_id, customer_id, now, now))
    conn.close()


class Central:
    def __init__(self) -> None:
        self.points = 800

    def fetch(self, customer_id: str) -> dict[str, Any]:
        return {"loyalty_points": self.points, "consents": {"tracking": {"granted": True}},
                "timeline": [{"gtin": GTIN}]}


@pytest.fixture
def store_db(tmp_path: Path) -> Path:
    return make_store_db(tmp_path / "edge.db")


@pytest.fixture
def service(store_db: Path) -> Iterator[KioskService]:
    s = KioskService(store_db, STORE, profiles=Central())
    yield s
    s.close()


@pytest.fixture
def requester(service: KioskService) -> InProcessRequester:
    return InProcessRequester(service)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def payments() -> SimulatedPayments:
    return SimulatedPayments()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def flow(requester, payments, clock, outbox) -> KioskFlow:
    return KioskFlow(StoreClient(requester), payments, publisher=outbox, clock=clock,
                     idle_timeout_s=30)
