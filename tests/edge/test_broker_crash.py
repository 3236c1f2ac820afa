"""The broker's loss window is closed end to end (issue 6, section 4).

Mosquitto saves its state every ``autosave_interval`` (10 s): SIGKILLed while the
edge is down, it loses what it acknowledged to devices since the last save. The
device keeps every message until the edge's commit notice names it and resends
what is unconfirmed after a reconnect, so the kill loses nothing.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time

from edge.node import EdgeNode
from firmware_sim.device import DeviceClient
from vitrine.broker import start_broker

from .conftest import query, wait_until

N = 3000


def test_broker_sigkill_with_the_edge_down_and_a_backlog_loses_nothing(broker, edge_config):
    # 3,000 messages in about a second is above the per-device rate limit (edge/flood.py);
    # this test is about the broker, not floods.
    edge_config = dataclasses.replace(edge_config, device_rate_limit=0)
    node = EdgeNode(edge_config).start()  # creates the edge's persistent session
    dev = DeviceClient("nfc-01", "nfc_reader", "nfc-01-pw", store_id=broker.store_id,
                       port=broker.port, heartbeat_s=3600, buffer_size=10_000,
                       reconnect_min_s=0.1, reconnect_max_s=0.5)
    try:
        assert dev.start(wait=5)
        first = dev.publish_json("nfc", {"uid": "04a1b2c3d4e5f6"})
        assert dev.wait_committed(10), "no commit notice from the edge"
        assert dev.stats.committed == 1
        # Save the broker's state now (its snapshot holds the edge's session), as its
        # autosave would have done; then the edge goes away.
        os.kill(broker.process.proc.pid, signal.SIGUSR1)
        time.sleep(0.5)
        node.stop()
        ids = [dev.publish_json("nfc", {"uid": "04a1b2c3d4e5f6"}) for _ in range(N)]
        assert dev.flush(30)  # every one acknowledged by the broker ("success")...
        assert dev.awaiting_commit == N  # ...but not confirmed by the edge
        broker.process.kill()  # SIGKILL: no save; the backlog was never snapshotted
        broker.process = start_broker(broker.process.settings, allow_embedded=False,
                                      log_file=broker.data_dir / "broker.log")
        assert wait_until(lambda: dev.stats.reconnects >= 1, timeout=15)
        assert dev.stats.resent_unconfirmed >= N
        node = EdgeNode(edge_config).start()
        wait_until(lambda: query(edge_config.db_path, "SELECT count(*) FROM events")[0][0]
                   == N + 1, timeout=60)
        stored = {r[0] for r in query(edge_config.db_path, "SELECT msg_id FROM events")}
        assert stored == {first, *ids}  # 0 lost, and each exactly once
        assert dev.wait_committed(20)
        assert dev.stats.released_unconfirmed == 0
    finally:
        dev.close(flush_timeout=1)
        node.stop()
