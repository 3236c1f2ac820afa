"""Dumb cameras send frames; the edge decodes them with pyzbar."""

from __future__ import annotations

import base64

from firmware_sim.frames import encode_frame, qr_frame

from .conftest import GTIN, query, wait_until


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
