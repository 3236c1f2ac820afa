"""firmware_sim.label_swarm: many labels on one thread, each its own MQTT identity, acked.

Real Mosquitto with the store's ACL and a real edge node: every label of the swarm logs
in with its own credentials, gets its bitmap, and the edge records the hash it reports;
a price change reaches each affected label. A label cannot read another's commands.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from edge.config import load_config
from edge.db import connect
from edge.node import EdgeNode
from edge.rules import Rules
from edge.sync import materialise
from firmware_sim.label_swarm import LabelSwarm
from tests.edge.conftest import GTIN, GTIN_2, LAYOUT, LOYALTY_KEY, make_client, query, wait_until

pytestmark = pytest.mark.integration
LABELS = [f"esl-sw-{n:03d}" for n in range(40)]


def test_a_swarm_of_labels_is_served_and_acks_like_labels(broker, tmp_path):
    layout = json.loads(json.dumps(LAYOUT))
    layout["devices"] += [{"id": d, "kind": "shelf_label", "zone": "shoes", "shelf": None,
                           "gtin": GTIN if n % 2 else GTIN_2} for n, d in enumerate(LABELS)]
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    broker.add_many([(d["id"], d["kind"]) for d in layout["devices"]]
                    + [("esl-spy", "shelf_label")])
    cfg = load_config(env={}, store_id=broker.store_id, db_path=tmp_path / "edge.db",
                      mqtt_port=broker.port, mqtt_password="edge-pw",
                      loyalty_keys="k1:" + LOYALTY_KEY.hex(),
                      layout_path=tmp_path / "layout.json", panel_port=0)

    def acked() -> dict[str, tuple]:
        return {r[0]: r[1:] for r in query(cfg.db_path, "SELECT device_id, want_hash, "
                                           "acked_hash, acked_price_cents FROM shelf_labels")}

    with EdgeNode(cfg):
        swarm = LabelSwarm("127.0.0.1", broker.port, broker.store_id,
                           [(d, f"{d}-pw") for d in LABELS]).start()
        try:
            assert threading.active_count() < 40  # one thread for all of them
            state = wait_until(lambda: (lambda st: st if all(
                st[d][0] and st[d][0] == st[d][1] for d in LABELS) else None)(acked()), 60)
            assert swarm.shown() == {d: state[d][0] for d in LABELS}
            assert swarm.connected == len(LABELS) and swarm.bad_commands == 0
            # Labels are held to their own ACL: one cannot read another label's commands.
            spy = make_client(broker.port, "esl-spy", "esl-spy-pw")
            got: list = []
            spy.on_message = lambda *a: got.append(a[2].topic)
            spy.subscribe(f"vitrine/v1/{broker.store_id}/label/{LABELS[1]}/cmd", qos=1)
            db = connect(cfg.db_path)
            now = time.time()
            db.conn.execute("BEGIN IMMEDIATE")
            db.conn.execute("INSERT INTO local_markdowns (gtin, price_cents, valid_from, set_at)"
                            " VALUES (?, 4242, 0, ?)", (GTIN, now))
            materialise(db.conn, cfg.store_id, Rules(), [GTIN], now)
            db.conn.execute("COMMIT")
            db.conn.close()
            affected = [d for n, d in enumerate(LABELS) if n % 2]
            wait_until(lambda: all(acked()[d][2] == 4242 and acked()[d][0] == acked()[d][1]
                                   for d in affected), 60)
            assert all(acked()[d][2] != 4242 for d in LABELS if d not in affected)
            spy.disconnect()
            spy.loop_stop()
            assert got == []
            assert swarm.reports >= len(LABELS) + len(affected)
        finally:
            swarm.stop()
