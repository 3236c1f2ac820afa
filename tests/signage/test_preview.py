"""signage.preview: a small thumbnail of the frame on screen, rate-limited, never buffered."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from contract.playlists import parse_playlists
from contract.validation import MAX_PAYLOAD_BYTES, validate
from edge.config import load_config
from edge.node import EdgeNode
from signage.cache import ScreenCache
from signage.preview import PreviewSink, thumbnail
from signage.profiles import LANDSCAPE, PORTRAIT
from signage.render import render
from tests.edge.conftest import LAYOUT, LOYALTY_KEY, query, wait_until

from .fixtures import assets, spotlight

ROOT = Path(__file__).resolve().parents[2]
DOC = {"playlists": [{"id": "p", "zones": ["*"], "items": [
    {"kind": "text", "id": "hello", "title": "Bonjour", "duration_s": 60}]}]}


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


@pytest.mark.integration
def test_headless_play_command_publishes_previews_the_edge_keeps(broker, tmp_path):
    """`vitrine signage play --window off` as shipped: its thumbnails reach the edge."""
    layout = json.loads(json.dumps(LAYOUT))
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    broker.add_many([(d["id"], d["kind"]) for d in layout["devices"]])
    cfg = load_config(env={}, store_id=broker.store_id, db_path=tmp_path / "edge.db",
                      mqtt_port=broker.port, mqtt_password="edge-pw",
                      loyalty_keys="k1:" + LOYALTY_KEY.hex(),
                      layout_path=tmp_path / "layout.json", panel_port=0)
    ScreenCache(tmp_path / "cache").save_playlists(parse_playlists(DOC))
    (tmp_path / "pw").write_text("sign-01-pw\n")
    with EdgeNode(cfg):
        proc = subprocess.run(
            [sys.executable, "-m", "vitrine", "signage", "play", "--screen", "sign-01",
             "--zone", "shoes", "--port", str(broker.port), "--store-id", broker.store_id,
             "--password-file", str(tmp_path / "pw"), "--cache-dir", str(tmp_path / "cache"),
             "--window", "off", "--profile", "portrait", "--stop-after-s", "3"],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-2000:]
        row = wait_until(lambda: query(cfg.db_path, "SELECT item_id, width, height, "
                                       "frame_width, frame_height FROM screen_previews "
                                       "WHERE device_id = 'sign-01'"), 10)
    assert row == [("hello", 180, 320, 1080, 1920)]
