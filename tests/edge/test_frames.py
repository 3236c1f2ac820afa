"""Dumb cameras send frames; the edge decodes them with pyzbar."""

from __future__ import annotations

import base64
import dataclasses
import json

from edge.node import EdgeNode
from firmware_sim.frames import encode_frame, qr_frame

from .conftest import GTIN, LAYOUT, query, wait_until


def test_camera_frame_is_decoded_at_the_edge(edge, observer, device):
    img = qr_frame(f"https://id.gs1.org/01/{GTIN}", rotate_deg=12, noise=0.05, seed=3)
    device("cam-01").send("frame", {"format": "png",
                                    "image": base64.b64encode(encode_frame(img, "png")).decode()})
    (ev,) = observer.wait_for("interest", timeout=10)
    assert ev["gtin"] == GTIN and ev["source"] == "frame" and ev["zone"] == "shoes"


def test_broken_frame_is_quarantined(edge, device, edge_config):
    device("cam-01").send("frame", {"format": "png",
                                    "image": base64.b64encode(b"\x89PNG not really").decode()})
    rows = wait_until(lambda: query(edge_config.db_path, "SELECT reason FROM quarantine"))
    assert rows == [("bad_frame",)]


def test_deeply_nested_frame_is_quarantined_as_not_json(edge, device, edge_config):
    """Deep nesting made the frame lane's JSON parser recurse out: ``internal_error``."""
    device("cam-01").send("frame", b"[" * 200_000)
    rows = wait_until(lambda: query(edge_config.db_path, "SELECT reason FROM quarantine"))
    assert rows == [("not_json",)]


def test_a_busy_camera_does_not_hold_up_another_cameras_frame(edge_config, layout_file, broker,
                                                              device):
    """Fair lane (issue 6): one camera keeps the lane full, under its rate limit; another
    camera's frame is decoded after about one of the busy camera's, not after all the
    frames that camera queued before it (first in, first out: all 12 came first)."""
    layout = {**LAYOUT, "devices": [*LAYOUT["devices"], {"id": "cam-02", "kind": "camera",
                                                          "zone": "kitchen", "shelf": "K3"}]}
    layout_file.write_text(json.dumps(layout))
    broker.add("cam-02", "camera")
    cfg = dataclasses.replace(edge_config, frame_workers=1, frame_queue_max=8)
    def frame(size: tuple[int, int] | None) -> str:
        img = qr_frame(f"https://id.gs1.org/01/{GTIN}", scale=4, noise=0.05, seed=1, size=size)
        return base64.b64encode(encode_frame(img, "png")).decode()

    big, small = frame((800, 600)), frame(None)
    node = EdgeNode(cfg).start()
    try:
        busy, other = device("cam-01"), device("cam-02")
        for i in range(12):  # ~140 ms of decoding each, sent much faster than that
            busy.send("frame", {"format": "png", "image": big}, msg_id=f"busy-{i}")
        # The busy camera holds its whole share of the lane (all but one slot) ...
        wait_until(lambda: node.frames.pending >= node.frames.per_device_max, timeout=30)
        assert node.frames.per_device_max == 7
        other.send("frame", {"format": "png", "image": small}, msg_id="other-0")  # ... now

        def committed() -> list[str] | None:
            rows = query(cfg.db_path, "SELECT device_id FROM events WHERE channel = 'frame'"
                         " ORDER BY id")
            return [r[0] for r in rows] if len(rows) == 13 else None

        order = wait_until(committed, timeout=60)
        after = order[order.index("cam-02") + 1:]
        # The other camera's frame reaches the lane once the busy camera's last frame did
        # (the broker's queue is in order), with >= 6 of the busy camera's frames still
        # in the lane: round robin decodes it after at most the one in progress and one
        # more; first in, first out would decode it last.
        assert len(after) >= 4, order
        assert set(after) == {"cam-01"}
        assert node.frames.high_water <= 8
    finally:
        node.stop()
