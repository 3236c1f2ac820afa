"""Upgrading a central that ran before migration 5 (least privilege) keeps what it held.

Balances stay the same (loyalty events become "legacy" ledger entries),
customers seen in a store stay visible to it, and erasure orders issued before
the upgrade still reach every store, and orders taken before the order lifecycle
(migration 7) enter it as "placed", on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from central import migrations
from central.db import open_database
from tests.central.conftest import STORE, make_central


def test_upgrade_from_version_4(backend: dict[str, Any], tmp_path: Any,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    db = open_database(backend.get("database_url"), backend.get("sqlite_path",
                                                                 tmp_path / "c.db"))
    monkeypatch.setattr(migrations, "MIGRATIONS",
                        [m for m in migrations.MIGRATIONS if m[0] <= 4])
    assert migrations.migrate(db)[-1] == 4
    monkeypatch.undo()
    now = time.time()

    def legacy(tx: Any) -> None:
        tx.execute("INSERT INTO credentials VALUES ('store:store-a', 'store', 'store-a', 'h1', "
                   "?, NULL)", (now,))
        tx.execute("INSERT INTO credentials VALUES ('store:store-b', 'store', 'store-b', 'h2', "
                   "?, NULL)", (now,))
        tx.execute("INSERT INTO customers VALUES ('c1', ?)", (now,))
        tx.execute("INSERT INTO consents VALUES ('c1', 'tracking', 1, 'web', ?)", (now - 99,))
        for i, points in enumerate((40, 60, -30)):
            tx.execute("INSERT INTO events (event_id, kind, channel, source, customer_id, "
                       "points, occurred_at, ingested_at, payload) VALUES (?, 'loyalty', "
                       "'web', 'channel:web', 'c1', ?, ?, ?, '{}')",
                       (f"l{i}", points, now - 50 + i, now))
        tx.execute("INSERT INTO events (event_id, kind, channel, source, store_id, customer_id, "
                   "session_id, occurred_at, ingested_at, payload) VALUES ('p1', 'presence', "
                   "'store', 'store:store-a', 'store-a', 'c1', 's1', ?, ?, '{}')",
                   (now - 10, now))
        tx.execute("INSERT INTO erasures (customer_id, session_ids, alias_keys, erased_at, "
                   "requested_by) VALUES ('gone', '[\"sg\"]', NULL, ?, 'channel:web')", (now,))
        tx.execute("INSERT INTO orders (order_id, channel, customer_id, fulfilment, store_id, "
                   "digest, payload, received_at, submitted_by) VALUES ('o-old', 'web', 'c1', "
                   "'click_and_collect', 'store-a', 'd', '{\"order_id\": \"o-old\"}', ?, "
                   "'channel:web')", (now - 5,))

    db.run(legacy)
    db.close()
    c = make_central(backend)  # migrates to the latest version, like a new worker would
    try:
        assert c.count("SELECT MAX(version) AS v FROM schema_migrations") == max(
            m[0] for m in migrations.MIGRATIONS)
        assert c.profile("c1")["loyalty_points"] == 70
        status, summary = c.api("GET", "/api/v1/customers/c1", token=c.store_token)
        assert status == 200 and summary["customer_id"] == "c1"
        _, feed = c.api("GET", f"/api/v1/stores/{STORE}/erasures?since=0", token=c.store_token)
        assert [(e["customer_id"], e["session_ids"], e["aliases"]) for e in feed["erasures"]] \
            == [("gone", ["sg"], [])]
        assert c.count("SELECT COUNT(*) AS n FROM erasure_stores") == 2  # both stores
        # An order taken before the lifecycle existed is "placed", in its store's log,
        # and moves on like any other.
        _, changes = c.api("GET", f"/api/v1/stores/{STORE}/order-changes?since=0",
                           token=c.store_token)
        assert [(x["order_id"], x["status"], x["changed_by"]) for x in changes["changes"]] == [
            ("o-old", "placed", "channel:web")]
        status, moved = c.api("POST", "/api/v1/orders/o-old/status",
                              {"status": "cancelled", "change_id": "old-cancel"},
                              token=c.store_token)
        assert status == 201 and moved["previous"] == "placed", moved
    finally:
        c.servers[0].stop()
        c.db.close()
