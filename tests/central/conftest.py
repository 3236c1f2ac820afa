"""Central helpers: a central worker served over HTTP, and contract events to feed it.

The fixtures (``backend``, ``central``, ``pg_cluster``) are in tests/conftest.py, so
that the edge's tests against central use the same one: every test that takes
``central`` runs twice, on SQLite and on PostgreSQL. When PostgreSQL is not
installed the suite fails (it must not silently test half the product).
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from central import create_app
from central.credentials import issue
from central.pg_sandbox import PgCluster
from central.server import ServerThread
from tests.central.http import call

ADMIN_TOKEN = "admin-secret-for-tests"
STORE = "store-a"
_db_counter = itertools.count()


def fresh_pg_url(cluster: PgCluster) -> str:
    return cluster.create_schema(f"t{next(_db_counter)}_{uuid.uuid4().hex[:6]}")


@dataclass
class Central:
    """A central worker served over HTTP, with helpers speaking its API."""

    url: str
    app: Any
    backend: str
    store_token: str
    db_config: dict[str, Any]
    admin: str = ADMIN_TOKEN
    servers: list[ServerThread] = field(default_factory=list)

    @property
    def db(self) -> Any:
        return self.app.extensions["central_db"]

    def api(self, method: str, path: str, body: Any = None, token: str | None = None
            ) -> tuple[int, Any]:
        return call(method, self.url + path, token or self.admin, body)

    def post_events(self, events: list[dict[str, Any]], token: str | None = None
                    ) -> tuple[int, Any]:
        return self.api("POST", "/api/v1/events", {"events": events}, token or self.store_token)

    def profile(self, customer_id: str) -> dict[str, Any]:
        status, body = self.api("GET", f"/api/v1/customers/{customer_id}")
        assert status == 200, body
        return body

    def count(self, sql: str, params: tuple = ()) -> int:
        row = self.db.run(lambda tx: tx.one(sql, params), write=False)
        return int(next(iter(dict(row).values())))


def make_central(db_config: dict[str, Any], **overrides: Any) -> Central:
    cfg = {"admin_token": ADMIN_TOKEN, **db_config, **overrides}
    app = create_app(cfg)
    server = ServerThread(app).start()
    token = issue(app.extensions["central_db"], "store", STORE)
    backend = "postgres" if db_config.get("database_url") else "sqlite"
    return Central(server.url, app, backend, token, db_config, servers=[server])


_ids = itertools.count()


def interest(session: str, gtin: str = "00000000000017", customer: str | None = None,
             store: str = STORE, at: float | None = None, category: str | None = "shoes",
             event_id: str | None = None, zone: str | None = "z1") -> dict[str, Any]:
    """A contract interest event as an edge outbox holds it."""
    at = time.time() if at is None else at
    return {"event_id": event_id or f"ev-{uuid.uuid4()}", "type": "interest", "store_id": store,
            "device_id": "reader-1", "zone": zone, "shelf": "s1", "gtin": gtin,
            "product": {"category": category} if category else None, "customer_id": customer,
            "session_id": session, "source": "nfc", "received_at": at, "device_ts": at}


def presence(customer: str, session: str, store: str = STORE, at: float | None = None,
             zone: str | None = "entrance", event_id: str | None = None) -> dict[str, Any]:
    at = time.time() if at is None else at
    return {"event_id": event_id or f"ev-{uuid.uuid4()}", "type": "presence", "store_id": store,
            "device_id": "kiosk-1", "zone": zone, "customer_id": customer, "session_id": session,
            "method": "card", "received_at": at, "device_ts": at}


def channel_event(kind: str, channel: str, at: float | None = None, **fields: Any
                  ) -> dict[str, Any]:
    """A channel-envelope event (web, app, call centre, crm...)."""
    return {"event_id": f"ev-{uuid.uuid4()}", "type": kind, "channel": channel,
            "occurred_at": time.time() if at is None else at, **fields}


def grant(central: Central, customer: str, tracking: bool = True, at: float | None = None
          ) -> None:
    body: dict[str, Any] = {"tracking": tracking}
    if at is not None:
        body["at"] = at
    status, resp = central.api("PUT", f"/api/v1/customers/{customer}/consents", body)
    assert status == 200, resp
