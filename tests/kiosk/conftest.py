"""Fixtures for the kiosk: a real edge database and kiosk service, and a kiosk flow on it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract.kiosk_ops import KioskOpError
from edge.db import connect, migrate
from edge.kiosk_profiles import ProfilePrefetcher
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
    """What the kit's router hands a handler (``edge.requests.RequestContext``)."""

    device_id: str
    kind: str
    zone: str | None
    store_id: str
    now: float
    conn: sqlite3.Connection


class InProcessRequester:
    """The edge's kiosk service called in this process, one transaction per request like
    the kit's router (the flow's logic tests; the window tests go over MQTT).

    ``down`` stands for an edge that does not answer.
    """

    def __init__(self, db_path: Path, central: Any, device_id: str = KIOSK_ID) -> None:
        self.service = KioskService(STORE)
        self.conn = connect(db_path).conn
        self.prefetcher = ProfilePrefetcher(db_path, central)
        self.device_id = device_id
        self.down = False
        self.calls: list[str] = []

    def identify(self, session_id: str, customer_id: str) -> None:
        """A card tapped at this kiosk: the pipeline opens the session, the prefetcher
        asks central."""
        now = time.time()
        self.conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                          (session_id, self.device_id, customer_id, now, now))
        self.prefetcher.fetch_now(self.conn, customer_id)

    def request(self, op: str, body: dict[str, Any], *, timeout: float = 5.0,
                request_id: str | None = None) -> dict[str, Any]:
        self.calls.append(op)
        if self.down:
            raise TimeoutError(f"{op}: no reply in {timeout} s")
        ctx = Ctx(self.device_id, "kiosk", None, STORE, time.time(), self.conn)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if op == "session_end":  # the kit's op: a fresh anonymous session
                self.conn.execute("INSERT INTO sessions VALUES (?, ?, NULL, ?, ?)",
                                  (f"anon-{len(self.calls)}", self.device_id, ctx.now, ctx.now))
                reply: dict[str, Any] = {"committed": True}
            else:
                reply = self.service.handle(ctx, op, body)
        except KioskOpError as exc:
            self.conn.execute("ROLLBACK")
            raise _Refusal(exc.code, exc.message) from None
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return reply


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
        return f"m{len(self.sent)}"


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
def requester(store_db: Path) -> Iterator[InProcessRequester]:
    r = InProcessRequester(store_db, Central())
    yield r
    r.conn.close()


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
