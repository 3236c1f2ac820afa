"""The screen's live preview: a small JPEG of its current frame for the store's panel.

:class:`PreviewSink` wraps the player's sink (window or disk): every frame goes on to
it unchanged, and the latest one is kept. :meth:`PreviewSink.poll` (called on every
tick) publishes a thumbnail of it on the screen's ``preview`` channel when

* the frame changed since the last preview sent,
* ``interval_s`` passed since the last one (a spotlight burst sends one preview,
  the latest, not one per frame: at most one message every ``interval_s``), and
* the device is connected: a preview is "what is on screen now", so none is
  buffered while offline (like a heartbeat); the latest is sent on reconnection.

The thumbnail keeps the frame's shape, at most ``max_side`` pixels on its long side
(320: 320x180 for a landscape screen, 180x320 portrait), JPEG quality 70: 5-15 KB,
far under the channel's 64 KB limit; encoding it costs ~2 ms (``Image.reduce`` then
``thumbnail``), once per ``interval_s`` at most, on the ticking thread. The edge
keeps only the latest per screen (``edge/screen_previews.py``).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from io import BytesIO
from typing import Any, Protocol

from PIL import Image

from contract.screen_items import Item

log = logging.getLogger("vitrine.signage.preview")

DEFAULT_INTERVAL_S = 2.0
DEFAULT_MAX_SIDE = 320
QUALITY = 70


class FrameSink(Protocol):
    def show(self, image: Image.Image, item: Item, trigger: str) -> None: ...


def thumbnail(image: Image.Image, max_side: int = DEFAULT_MAX_SIDE) -> tuple[bytes, int, int]:
    """JPEG bytes of ``image`` shrunk to at most ``max_side`` on its long side, and its size."""
    factor = max(1, max(image.size) // (max_side * 2))
    small = image.reduce(factor) if factor > 1 else image.copy()
    small.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buf = BytesIO()
    small.convert("RGB").save(buf, "JPEG", quality=QUALITY)
    return buf.getvalue(), small.width, small.height


class PreviewSink:
    def __init__(self, inner: FrameSink, publish: Callable[[dict[str, Any]], Any],
                 connected: Callable[[], bool], *, interval_s: float = DEFAULT_INTERVAL_S,
                 max_side: int = DEFAULT_MAX_SIDE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.publish = publish
        self.connected = connected
        self.interval_s = interval_s
        self.max_side = max_side
        self.clock = clock
        self.sent = 0
        self._lock = threading.Lock()
        self._pending: tuple[Image.Image, Item, str] | None = None
        self._last_sent_at = -float("inf")

    def show(self, image: Image.Image, item: Item, trigger: str) -> None:
        self.inner.show(image, item, trigger)
        with self._lock:
            self._pending = (image, item, trigger)

    def poll(self) -> bool:
        """Publish the latest frame's thumbnail if it is due; True when one was sent."""
        now = self.clock()
        with self._lock:
            if self._pending is None or now - self._last_sent_at < self.interval_s \
                    or not self.connected():
                return False
            image, item, trigger = self._pending
            self._pending = None
            self._last_sent_at = now
        data, width, height = thumbnail(image, self.max_side)
        try:
            self.publish({"item_id": item.id, "kind": item.kind, "trigger": trigger,
                          "width": width, "height": height, "frame_width": image.width,
                          "frame_height": image.height,
                          "image": base64.b64encode(data).decode("ascii")})
        except Exception:  # a preview is a courtesy: never stop the screen for it
            log.exception("preview not published")
            return False
        self.sent += 1
        return True
