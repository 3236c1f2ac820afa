"""The kiosk's camera: real rendered QR images (segno) -> pyzbar -> the flow -> the edge.

Frames come from a directory source (what the window tests and a camera-less
kiosk use); decoding is the kit's ``contract.qr_image`` on the real zbar.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import segno
from PIL import Image

from contract.loyalty import issue_token
from kiosk.camera import DirectoryFrames, QrReader, open_camera
from tests.edge.conftest import GTIN, LOYALTY_KEY
from tests.kiosk.devices import deliver, session_opened

CUSTOMER = "C0001234"


def app_qr(customer: str = CUSTOMER) -> str:
    """What the loyalty app shows: a link with a fresh single-use app token."""
    token = issue_token(LOYALTY_KEY, customer, kind="app", now=time.time(), ttl_s=120)
    return f"https://vitrine.example/l/{token}"


def render(path: Path, text: str, *, scale: int = 6) -> Path:
    tmp = path.with_name(f".{path.name}.part")
    segno.make(text, error="m").save(str(tmp), kind="png", scale=scale, border=4)
    os.replace(tmp, path)
    return path


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_code_in_view_is_reported_once_until_it_leaves(tmp_path):
    text = app_qr()
    frames = DirectoryFrames(tmp_path / "cam")
    codes: list[str] = []
    clock = FakeClock()
    reader = QrReader(codes.append, repeat_s=5.0, clock=clock)
    assert frames.frame() is None  # nothing shown yet
    for i in range(3):  # the phone held up: the same code in three frames
        render(tmp_path / "cam" / f"{i}.png", text)
    while (img := frames.frame()) is not None:
        reader.feed(img)
        clock.now += 1.0
    assert codes == [text] and reader.frames == 3
    clock.now += 6.0  # gone for longer than repeat_s, then shown again: a new sighting
    render(tmp_path / "cam" / "9.png", text)
    reader.feed(frames.frame())
    assert codes == [text, text]


def test_bad_and_empty_frames_are_counted_and_skipped(tmp_path):
    cam = tmp_path / "cam"
    frames = DirectoryFrames(cam)
    (cam / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.new("RGB", (320, 240), "white").save(cam / "1.png")
    (cam / "2.txt").write_text("not a frame")
    render(cam / "3.png", f"https://id.gs1.org/01/{GTIN}")
    codes: list[str] = []
    reader = QrReader(codes.append)
    while (img := frames.frame()) is not None:
        reader.feed(img)
    assert frames.bad_frames == 1 and reader.frames == 2
    assert codes == [f"https://id.gs1.org/01/{GTIN}"]


def test_open_camera_refuses_an_unknown_source(tmp_path):
    assert isinstance(open_camera(f"dir:{tmp_path}"), DirectoryFrames)
    with pytest.raises(ValueError, match="kivy, kivy:INDEX or dir:PATH"):
        open_camera("http://camera")


def test_app_qr_at_the_camera_identifies_the_shopper_at_the_edge(tmp_path, flow, requester,
                                                                  outbox):
    """Camera frame -> pyzbar -> flow publishes ``qr`` -> the edge verifies the app token
    and opens a session -> the kiosk greets with the points central holds."""
    frames = DirectoryFrames(tmp_path / "cam")
    reader = QrReader(flow.code_scanned)
    render(tmp_path / "cam" / "0.png", app_qr())
    reader.feed(frames.frame())
    assert [c for c, _ in outbox.sent] == ["qr"]
    customer, session_id = session_opened(deliver(requester, outbox))
    assert customer == CUSTOMER
    requester.prefetcher.fetch_now(requester.conn, customer)
    flow.customer_identified(session_id)
    assert flow.screen == "greeting" and flow.shopper.points == 800
    # a product label held to the camera opens that product, and goes nowhere else
    render(tmp_path / "cam" / "1.png", f"https://id.gs1.org/01/{GTIN}")
    reader.feed(frames.frame())
    assert flow.screen == "product" and flow.shopper.product["gtin"] == GTIN
    assert outbox.sent == []
