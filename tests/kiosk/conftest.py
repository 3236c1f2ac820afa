"""Fixtures for the kiosk: the edge's real writer core in-process, and a kiosk flow on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contract.requests import RequestTimeout
from edge.kiosk_profiles import ProfilePrefetcher
from kiosk.flow import KioskFlow
from kiosk.payment import SimulatedPayments
from kiosk.store import StoreClient
from tests.edge.conftest import GTIN, LAYOUT
from tests.edge.store_harness import StoreHarness

STORE = LAYOUT["store_id"]
KIOSK_ID = "kiosk-01"


class InProcessRequester(StoreHarness):
    """The kiosk's requests answered by the edge's real writer core in this process (the
    flow's logic tests; the window tests go over Mosquitto to a real edge).

    ``down`` stands for an edge that does not answer.
    """

    def __init__(self, tmp_path: Path, central: Any, *, central_url: str = "") -> None:
        super().__init__(tmp_path, central_url=central_url)
        now = time.time()
        self.conn.executemany("INSERT INTO sync_stock VALUES (?, ?, ?, ?)",
                              [(STORE, GTIN, 3, now), ("store-lyon", GTIN, 7, now),
                               ("web-warehouse", GTIN, 50, now)])
        self.prefetcher = ProfilePrefetcher(self.cfg.db_path, central)
        self.down = False
        self.calls: list[str] = []

    def identify_at_kiosk(self, customer_id: str) -> str:
        """A card tapped at the kiosk: the pipeline opens the session, the prefetcher
        asks central. Returns the session id the edge announces to the kiosk."""
        session_id = self.identify(KIOSK_ID, customer_id)
        self.prefetcher.fetch_now(self.conn, customer_id)
        return session_id

    def request(self, op: str, body: dict[str, Any], *, timeout: float = 5.0,
                request_id: str | None = None) -> dict[str, Any]:
        self.calls.append(op)
        if self.down:
            raise RequestTimeout(request_id or "r", timeout)
        return self.ask(KIOSK_ID, op, body, request_id)


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
        return f"m{len(self.sent)}"


class Central:
    def __init__(self) -> None:
        self.points = 800

    def fetch(self, customer_id: str) -> dict[str, Any]:
        return {"loyalty_points": self.points, "consents": {"tracking": {"granted": True}},
                "timeline": [{"gtin": GTIN}]}


@pytest.fixture
def requester(tmp_path: Path) -> Iterator[InProcessRequester]:
    r = InProcessRequester(tmp_path, Central())
    yield r
    r.close()


@pytest.fixture
def store_db(requester: InProcessRequester) -> Path:
    return requester.cfg.db_path


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
