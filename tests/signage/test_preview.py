"""signage.preview: a small thumbnail of the frame on screen, rate-limited, never buffered."""

from __future__ import annotations

import base64
from io import BytesIO

from PIL import Image

from contract.validation import MAX_PAYLOAD_BYTES, validate
from signage.preview import PreviewSink, thumbnail
from signage.profiles import LANDSCAPE, PORTRAIT
from signage.render import render

from .fixtures import assets, spotlight


class Recorder:
    def __init__(self) -> None:
        self.frames: list[str] = []

    def show(self, image, item, trigger) -> None:
        self.frames.append(item.id)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _message(payload: dict) -> dict:
    return {"msg_id": "sign-1-1", "ts": 1767225600.0, **payload}


def test_thumbnail_keeps_the_frames_shape_and_fits_the_channel():
    for prof, want in ((LANDSCAPE, (320, 180)), (PORTRAIT, (180, 320))):
        frame = render(spotlight(), prof, assets)
        data, w, h = thumbnail(frame)
        assert (w, h) == want
        im = Image.open(BytesIO(data))
        assert im.format == "JPEG" and im.size == want
        assert len(base64.b64encode(data)) + 300 < MAX_PAYLOAD_BYTES["preview"] // 2


def test_latest_frame_published_at_most_once_per_interval_and_only_online():
    inner, sent, clock = Recorder(), [], Clock()
    online = [False]
    sink = PreviewSink(inner, sent.append, lambda: online[0], interval_s=2.0, clock=clock)
    frame = render(spotlight(), LANDSCAPE, assets)
    sink.show(frame, spotlight(id="a"), "schedule")
    assert inner.frames == ["a"]  # the screen itself is never held back
    assert not sink.poll() and sent == []  # offline: not sent, not buffered
    online[0] = True
    assert sink.poll()
    validate("preview", _message(sent[-1]))
    assert (sent[-1]["item_id"], sent[-1]["frame_width"], sent[-1]["frame_height"]) == (
        "a", 1920, 1080)
    assert not sink.poll()  # nothing new
    for name in "bcd":  # a burst of frames inside one interval: one preview, the latest
        clock.now += 0.3
        sink.show(frame, spotlight(id=name), "tap")
        sink.poll()
    assert len(sent) == 1
    clock.now += 2.0
    assert sink.poll() and sent[-1]["item_id"] == "d" and sent[-1]["trigger"] == "tap"
    assert len(sent) == 2 and inner.frames == ["a", "b", "c", "d"]
