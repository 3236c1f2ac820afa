"""central.screen_attribution: proof of play accepted, interest attributed to what was on screen.

Every test runs on SQLite and on PostgreSQL (the ``central`` fixture).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from tests.central.conftest import STORE, Central, grant, interest, make_central

SHOE = "04063511002891"
BOTTLE = "09506000134352"


def play(zone: str | None = "z1", *, start: float, duration: float = 10.0,
         gtin: str | None = SHOE, item: str | None = None, screen: str = "sign-1",
         store: str = STORE, **extra: Any) -> dict[str, Any]:
    """A play event as the edge's outbox holds it (``play_event.json``)."""
    return {"event_id": f"play-{uuid.uuid4()}", "type": "play", "store_id": store,
            "device_id": screen, "zone": zone, "item_id": item or f"tap-{gtin}",
            "kind": "spotlight" if gtin else "text", "playlist_id": None,
            "trigger": "tap" if gtin else "schedule", "gtin": gtin, "started_at": start,
            "duration_s": duration, "shown_from": start, "shown_until": start + duration,
            "clock": "edge", "received_at": start + duration, "device_ts": start + duration,
            **extra}


def attributions(central: Central, interest_id: str) -> list[Any]:
    return central.db.run(lambda tx: tx.all(
        "SELECT play_event_id, item_id, lag_s, same_product, window_s FROM screen_attributions"
        " WHERE interest_event_id = ? ORDER BY play_event_id", (interest_id,)), write=False)


def test_interest_after_a_play_in_its_zone_is_attributed_in_the_profile(central: Central):
    grant(central, "c1")
    t0 = time.time() - 300
    shown = play(start=t0, duration=15)                       # shoe spotlight t0..t0+15
    earlier = play(start=t0 - 100, duration=8, gtin=None, item="welcome")  # long gone
    elsewhere = play("z2", start=t0, duration=15, screen="sign-2")         # other zone
    status, body = central.post_events([shown, earlier, elsewhere])
    assert status == 200 and len(body["accepted"]) == 3, body
    during = interest("s1", gtin=SHOE, customer="c1", at=t0 + 5)     # while on screen
    after = interest("s1", gtin=BOTTLE, customer="c1", at=t0 + 40)   # 25 s after it left
    too_late = interest("s1", gtin=SHOE, customer="c1", at=t0 + 46)  # 31 s after: not
    status, body = central.post_events([during, after, too_late])
    assert status == 200 and len(body["accepted"]) == 3, body

    (d,) = attributions(central, during["event_id"])
    assert (d["play_event_id"], d["lag_s"], d["same_product"], d["window_s"]) == \
        (shown["event_id"], 0.0, 1, 30.0)
    (a,) = attributions(central, after["event_id"])
    assert a["play_event_id"] == shown["event_id"] and abs(a["lag_s"] - 25.0) < 1e-6
    assert a["same_product"] == 0
    assert attributions(central, too_late["event_id"]) == []

    timeline = {e["event_id"]: e for e in central.profile("c1")["timeline"]}
    (infl,) = timeline[during["event_id"]]["influenced_by"]
    assert infl == {"screen_id": "sign-1", "item_id": f"tap-{SHOE}", "kind": "spotlight",
                    "trigger": "tap", "gtin": SHOE, "shown_until": t0 + 15, "lag_s": 0.0,
                    "same_product": True}
    assert "influenced_by" not in timeline[too_late["event_id"]]


def test_a_play_that_arrives_after_the_interest_is_attributed_and_replays_add_nothing(
        central: Central):
    t0 = time.time() - 300
    tap = interest("anon-session", gtin=SHOE, at=t0 + 3)     # anonymous: attributed too
    assert central.post_events([tap])[0] == 200
    assert attributions(central, tap["event_id"]) == []
    shown = play(start=t0, duration=15)                     # sent when it left the screen
    assert central.post_events([shown])[0] == 200
    assert [r["play_event_id"] for r in attributions(central, tap["event_id"])] == \
        [shown["event_id"]]
    status, body = central.post_events([shown, tap])        # the forwarder resends a batch
    assert status == 200 and sorted(body["duplicate"]) == sorted(
        [shown["event_id"], tap["event_id"]])
    assert central.count("SELECT count(*) AS n FROM screen_attributions") == 1
    assert central.count("SELECT count(*) AS n FROM screen_plays") == 1


def test_proof_of_play_is_anonymous_and_checked(central: Central):
    t0 = time.time() - 60
    bad = [play(start=t0, customer_id="c1"), play(start=t0, session_id="s1"),
           {**play(start=t0), "shown_until": t0 - 1},
           play(start=t0, store="other-store"),
           {k: v for k, v in play(start=t0).items() if k != "shown_from"}]
    status, body = central.post_events(bad)
    assert status == 200 and body["accepted"] == []
    reasons = [r["reason"] for r in body["rejected"]]
    assert len(reasons) == 5
    assert "customer_id" in reasons[0] and "session_id" in reasons[1]
    assert "shown_until" in reasons[2] and "other-store" in reasons[3]
    assert "shown_from" in reasons[4]
    assert central.count("SELECT count(*) AS n FROM screen_plays") == 0


def test_the_window_is_configurable(backend):
    central = make_central(backend, attribution_window_s=5.0)
    try:
        t0 = time.time() - 300
        shown = play(start=t0, duration=10)
        near = interest("s", gtin=SHOE, at=t0 + 14)   # 4 s after it left
        far = interest("s", gtin=SHOE, at=t0 + 20)    # 10 s after: outside N = 5
        assert central.post_events([shown, near, far])[0] == 200
        assert [r["window_s"] for r in attributions(central, near["event_id"])] == [5.0]
        assert attributions(central, far["event_id"]) == []
    finally:
        for s in central.servers:
            s.stop()
        central.db.close()


def test_plays_and_interests_sent_at_the_same_moment_are_all_paired(central: Central):
    """The forwarder's lanes send a zone's plays and taps concurrently: none is missed."""
    t0 = time.time() - 3600
    pairs = [(play(start=t0 + 60 * i, duration=10, screen=f"sign-{i % 3}"),
              interest(f"s{i}", gtin=SHOE, at=t0 + 60 * i + 12)) for i in range(24)]
    errors: list[Any] = []

    def send(events: list[dict[str, Any]]) -> None:
        for ev in events:
            status, body = central.post_events([ev])
            if status != 200 or len(body["accepted"]) != 1:
                errors.append(body)

    threads = [threading.Thread(target=send, args=([p for p, _ in pairs],)),
               threading.Thread(target=send, args=([t for _, t in pairs],))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    for shown, tap in pairs:
        assert [r["play_event_id"] for r in attributions(central, tap["event_id"])] == \
            [shown["event_id"]]


def test_erasing_a_customer_deletes_the_attributions_of_their_events(central: Central):
    grant(central, "c9")
    t0 = time.time() - 300
    tap = interest("s9", gtin=SHOE, customer="c9", at=t0 + 2)
    other = interest("s-other", gtin=SHOE, at=t0 + 3)
    assert central.post_events([play(start=t0), tap, other])[0] == 200
    assert central.count("SELECT count(*) AS n FROM screen_attributions") == 2
    status, _ = central.api("DELETE", "/api/v1/customers/c9")
    assert status == 202
    assert attributions(central, tap["event_id"]) == []
    assert len(attributions(central, other["event_id"])) == 1
