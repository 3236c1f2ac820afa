"""What the kiosk's own reader and camera publish, delivered to the edge's real pipeline.

The window tests go over Mosquitto; the logic tests hand the kiosk's published
read straight to the in-process edge (``InProcessRequester``), which verifies
the token and opens the session exactly as it would for a read off the broker.
"""

from __future__ import annotations

import json
import time
from typing import Any

from contract.topics import device_topic
from edge.inbound import Inbound
from tests.kiosk.conftest import KIOSK_ID, STORE, InProcessRequester, Outbox


def deliver(requester: InProcessRequester, outbox: Outbox) -> list[tuple[str, dict[str, Any]]]:
    """Every read the kiosk published, through the edge's pipeline; the derived events."""
    events = []
    for channel, payload in outbox.sent:
        requester.n += 1
        body = {"msg_id": f"k{requester.n}", "ts": time.time(), **payload}
        item = Inbound(requester.n, 1, device_topic(STORE, KIOSK_ID, channel),
                       json.dumps(body).encode(), time.time())
        result = requester.core.pipeline.process_batch([item])
        events += [(kind, event) for kind, event, _text in result.events]
    outbox.sent.clear()
    return events


def session_opened(events: list[tuple[str, dict[str, Any]]]) -> tuple[str, str]:
    """``(customer_id, session_id)`` of the one identification among ``events``."""
    [presence] = [e for kind, e in events if kind == "presence" and e.get("customer_id")]
    return presence["customer_id"], presence["session_id"]
