"""Dumb cameras send frames; the edge decodes them with pyzbar."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading

from edge import frames
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
                                                              device, monkeypatch):
    """Fair lane (issue 6): one camera holds its whole share of the lane, under its rate
    limit; another camera's frame is decoded after the one in progress and one more, not
    after every frame that camera queued before it (first in, first out: 8th of 8)."""
    layout = {**LAYOUT, "devices": [*LAYOUT["devices"], {"id": "cam-02", "kind": "camera",
                                                          "zone": "kitchen", "shelf": "K3"}]}
    layout_file.write_text(json.dumps(layout))
    broker.add("cam-02", "camera")
    # The decoder waits at a gate until both cameras' frames are in the lane, so the
    # order does not depend on how fast this machine decodes or publishes (the frames
    # are still decoded by pyzbar, after the gate).
    gate = threading.Event()
    decode = frames.decode_frame_message

    def gated(item):
        assert gate.wait(30)
        return decode(item)

    monkeypatch.setattr(frames, "decode_frame_message", gated)
    cfg = dataclasses.replace(edge_config, frame_workers=1, frame_queue_max=8)
    image = base64.b64encode(encode_frame(qr_frame(f"https://id.gs1.org/01/{GTIN}", scale=4,
                                                   noise=0.05, seed=1), "png")).decode()
    node = EdgeNode(cfg).start()
    try:
        busy, other = device("cam-01"), device("cam-02")
        assert node.frames.per_device_max == 7  # all the lane's slots but one
        for i in range(7):
            busy.send("frame", {"format": "png", "image": image}, msg_id=f"busy-{i}")
        other.send("frame", {"format": "png", "image": image}, msg_id="other-0")
        # All eight in the lane: the busy camera's share is full, the other camera got
        # the slot left for it without waiting for a decode.
        wait_until(lambda: node.frames.pending == 8, timeout=30)
        gate.set()

        def committed() -> list[str] | None:
            rows = query(cfg.db_path, "SELECT msg_id FROM events WHERE channel = 'frame'"
                         " ORDER BY id")
            return [r[0] for r in rows] if len(rows) == 8 else None

        order = wait_until(committed, timeout=60)
        # Round robin: the frame being decoded when it came, one more of the busy
        # camera's, then the other camera's.
        assert order == ["busy-0", "busy-1", "other-0", *(f"busy-{i}" for i in range(2, 7))]
        assert list(node.frames.decoded) == [*["cam-01"] * 2, "cam-02", *["cam-01"] * 5]
        assert node.frames.high_water == 8
    finally:
        gate.set()
        node.stop()
