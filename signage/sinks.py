"""Where frames go: a file on disk (headless) or a full-screen Kivy window.

Headless: the latest frame of each screen is ``{frames_dir}/{screen_id}.jpg``
(JPEG, ``signage.encoding``) with ``{screen_id}.json`` beside it (item, kind,
trigger, time, frame count), both replaced atomically, so the panel and the
demo can show what every screen shows without a display. The window sink
shows the same image in a Kivy window when a display exists
(``signage.window``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from PIL import Image

from contract.screen_items import Item

from .encoding import SUFFIX, encode_frame


class DiskSink:
    def __init__(self, frames_dir: str | Path, screen_id: str):
        self.dir = Path(frames_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.screen_id = screen_id
        self.count = 0
        self.last: dict | None = None
        self.changed = threading.Condition()

    @property
    def frame_path(self) -> Path:
        return self.dir / f"{self.screen_id}{SUFFIX}"

    @property
    def meta_path(self) -> Path:
        return self.dir / f"{self.screen_id}.json"

    def show(self, image: Image.Image, item: Item, trigger: str) -> None:
        data = encode_frame(image)
        self.count += 1
        meta = {"screen_id": self.screen_id, "item_id": item.id, "kind": item.kind,
                "trigger": trigger, "gtin": getattr(item, "gtin", None),
                "shown_at": time.time(), "frames": self.count}
        for path, payload in ((self.frame_path, data),
                              (self.meta_path, json.dumps(meta).encode())):
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(payload)
            os.replace(tmp, path)
        with self.changed:
            self.last = meta
            self.changed.notify_all()
