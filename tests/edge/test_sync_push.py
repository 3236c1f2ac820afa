"""Real-time stock push over the store's real Mosquitto, with the production ACL."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from central.credentials import issue
from contract.stock_push import stock_message, sync_stock_topic
from edge.db import connect, migrate
from edge.sync import MqttSettings, SyncClient
from tests.central.conftest import make_central
from tests.edge.conftest import GTIN, GTIN_2, make_client, wait_until


def stock(db_path: Path) -> dict[tuple[str, str], tuple[int, float]]:
    conn = sqlite3.connect(db_path)
    try:
        return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
            "SELECT location, gtin, quantity, observed_at FROM sync_stock")}
    finally:
        conn.close()


def publish(client, topic: str, payload: bytes) -> None:
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(5)
    assert info.is_published()


def test_stock_pushed_by_the_bridge_applies_newest_first(broker, tmp_path: Path) -> None:
    db_path = tmp_path / "edge.db"
    db = connect(db_path)
    migrate(db)
    db.conn.close()
    broker.add_many([("sync-bridge", "edge"), ("nfc-01", "nfc_reader")])
    store = broker.store_id
    # No pulls (central is not needed here): only the push subscriber runs.
    sync = SyncClient(str(db_path), "http://127.0.0.1:9", "vtc_unused",
                      {"catalogue": 0, "prices": 0, "stock": 0, "erasures": 0},
                      store_id=store, mqtt=MqttSettings("127.0.0.1", broker.port, "edge",
                                                        "edge-pw"))
    bridge = make_client(broker.port, "sync-bridge", "sync-bridge-pw")
    reader = make_client(broker.port, "nfc-01", "nfc-01-pw")
    topic = sync_stock_topic(store)
    assert topic == f"vitrine/v1/{store}/edge/sync/stock"
    try:
        sync.start()
        assert sync.push_ready.wait(5)
        now = time.time()
        # A shelf reader cannot forge stock: the ACL refuses its publish.
        reader.publish(topic, stock_message([{"location": store, "gtin": GTIN, "quantity": 999,
                                              "observed_at": now + 10}]), qos=1
                       ).wait_for_publish(5)
        publish(bridge, topic, stock_message([
            {"location": store, "gtin": GTIN, "quantity": 7, "observed_at": now},
            {"location": "web-warehouse", "gtin": GTIN, "quantity": 120, "observed_at": now}]))
        wait_until(lambda: (store, GTIN) in stock(db_path), timeout=5)
        assert stock(db_path)[(store, GTIN)] == (7, now)
        # An older observation arriving late changes nothing; a bad message is counted.
        publish(bridge, topic, b"not json")
        publish(bridge, topic, stock_message([{"location": store, "gtin": GTIN, "quantity": 50,
                                               "observed_at": now - 30}]))
        publish(bridge, topic, stock_message([{"location": "web-warehouse", "gtin": GTIN,
                                               "quantity": 119, "observed_at": now + 1}]))
        wait_until(lambda: stock(db_path)[("web-warehouse", GTIN)][0] == 119, timeout=5)
        assert stock(db_path)[(store, GTIN)] == (7, now)
        m = sync.metrics()
        assert m["pushes_total"] == 3 and m["pushes_rejected_total"] == 1
        assert sync.stock_view(GTIN)["this_store"]["quantity"] == 7
    finally:
        for c in (bridge, reader):
            c.disconnect()
            c.loop_stop()
        sync.stop()


def test_synced_price_reaches_enrichment_of_a_running_edge(edge, observer, device,
                                                           tmp_path: Path) -> None:
    """The wiring EdgeNode uses: on_change asks the writer to reload its caches."""
    central = make_central({"sqlite_path": str(tmp_path / "central.db")})
    status, _ = central.api("PUT", "/api/v1/admin/feeds/catalogue", {"items": [
        {"gtin": GTIN_2, "name": "Kettle 2000", "brand": "Brew", "category": "kitchen"}]})
    assert status == 200
    status, _ = central.api("PUT", "/api/v1/admin/feeds/prices", {"items": [
        {"gtin": GTIN_2, "price_cents": 2999}]})
    assert status == 200
    token = issue(central.db, "store", edge.cfg.store_id)
    sync = SyncClient(str(edge.cfg.db_path), central.url, token,
                      {"stock": 0, "erasures": 0}, store_id=edge.cfg.store_id,
                      on_change=lambda feed: edge.request_reload(wait=5))
    try:
        sync.sync_once("catalogue")
        sync.sync_once("prices")
        sync.set_markdown(GTIN_2, 2499, set_by="manager")
        device("nfc-02").send("nfc", {"uid": "04A1B2C3D4E5F6", "ndef": None})
        (ev,) = observer.wait_for("interest")
        assert ev["product"]["name"] == "Kettle 2000" and ev["product"]["price_cents"] == 2499
    finally:
        sync.stop()
        for s in central.servers:
            s.stop()
        central.db.close()
