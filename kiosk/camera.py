"""The kiosk's camera reading the app's QR: frames -> ``contract.qr_image`` (pyzbar) -> the flow.

Where frames come from is a :class:`FrameSource`:

* :class:`KivyCameraFrames`: Kivy's ``Camera`` widget (``--camera kivy`` or
  ``kivy:INDEX``), the kiosk's real camera when it has one;
* :class:`DirectoryFrames`: every image file that appears in a directory is one
  frame (``--camera dir:PATH``). Tests drop real rendered QR images (segno) there,
  and a kiosk without a camera can be fed by whatever takes pictures.

:class:`QrReader` is the plain-Python part tests drive without a window: it
decodes a frame and reports each code once per sighting. The camera sees the
app's QR in every frame while the phone is held up, and an app token is single
use: publishing it twice would be a replay at the edge. So the same text is
ignored while it keeps being seen (within ``repeat_s`` of its last sighting).

:class:`CameraScanner` runs it on Kivy's clock: the frame is taken on the main
thread (a texture can only be read there), decoded on one worker thread (a
noisy 1280x720 frame costs ~0.1 s: the screen must not stutter), and a new code
goes back to the main thread as ``flow.code_scanned(text)``. While the worker is
busy, frames are skipped, never queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from contract.qr_image import FrameError, decode_pil

log = logging.getLogger("vitrine.kiosk.camera")

#: Image files a :class:`DirectoryFrames` picks up (anything else is left alone).
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")


class FrameSource(Protocol):
    def frame(self) -> Image.Image | None:
        """The newest frame not handed out yet, or None. Called on Kivy's main thread."""
        ...

    def close(self) -> None: ...


class DirectoryFrames:
    """Each new image file in ``root`` is one frame, oldest name first; each is read once.

    Writers should create the file under another name and rename it in (a half
    written PNG is a corrupt frame, skipped and counted). Files are left in place.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._seen: set[str] = set()
        self.bad_frames = 0

    def frame(self) -> Image.Image | None:
        paths = sorted(self.root.iterdir())
        self._seen &= {p.name for p in paths}  # forget removed files: bounded for weeks
        for path in paths:
            if path.name in self._seen or path.suffix.lower() not in FRAME_SUFFIXES:
                continue
            self._seen.add(path.name)
            try:
                with Image.open(path, formats=["PNG", "JPEG"]) as img:
                    img.load()
                    return img.copy()
            except (OSError, ValueError) as exc:
                self.bad_frames += 1
                log.warning("frame %s unreadable: %s", path.name, exc)
        return None

    def close(self) -> None:
        pass


class KivyCameraFrames:
    """Frames from Kivy's ``Camera`` widget (the platform's camera provider).

    Building it fails with ``RuntimeError`` when there is no camera: the kiosk then
    runs without one and says so in its log.
    """

    def __init__(self, index: int = 0, resolution: tuple[int, int] = (1280, 720)) -> None:
        from kivy.uix.camera import Camera

        try:
            self.camera = Camera(index=index, resolution=resolution, play=True)
        except Exception as exc:  # the providers raise whatever their backend does
            raise RuntimeError(f"no camera {index}: {exc}") from exc
        if self.camera._camera is None:  # no provider could open it
            raise RuntimeError(f"no camera {index}")
        self._last: Any = None
        self._frames = 0
        self.camera._camera.bind(on_texture=self._new_texture)  # one event per new frame

    def _new_texture(self, *_: Any) -> None:
        self._frames += 1

    def frame(self) -> Image.Image | None:
        tex = self.camera.texture
        if tex is None or self._frames == self._last:
            return None
        self._last = self._frames
        img = Image.frombytes("RGBA", tex.size, bytes(tex.pixels))
        return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)  # GL rows run bottom-up

    def close(self) -> None:
        self.camera.play = False


class QrReader:
    """Decode frames; report each code once while it stays in view."""

    def __init__(self, on_code: Callable[[str], None], *, repeat_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.on_code = on_code
        self.repeat_s = repeat_s
        self.clock = clock
        self._last_seen: dict[str, float] = {}
        self.frames = 0
        self.bad_frames = 0
        self.codes = 0

    def decode(self, img: Image.Image) -> list[str]:
        """Texts of the codes in ``img`` (``[]`` for none or a frame zbar cannot read)."""
        self.frames += 1
        try:
            return [d.text for d in decode_pil(img)]
        except FrameError as exc:
            self.bad_frames += 1
            log.warning("camera frame rejected: %s", exc)
            return []

    def seen(self, texts: list[str]) -> list[str]:
        """Of ``texts`` seen now, the ones to report: not seen within ``repeat_s``."""
        now = self.clock()
        new = [t for t in dict.fromkeys(texts)
               if now - self._last_seen.get(t, -self.repeat_s - 1) > self.repeat_s]
        for t in texts:
            self._last_seen[t] = now
        for t, at in list(self._last_seen.items()):  # bounded: forget codes long gone
            if now - at > self.repeat_s:
                del self._last_seen[t]
        return new

    def feed(self, img: Image.Image) -> list[str]:
        """Decode ``img`` and report what is new; returns what was reported."""
        new = self.seen(self.decode(img))
        for text in new:
            self.codes += 1
            self.on_code(text)
        return new


class CameraScanner:
    """Poll a frame source on Kivy's clock, decode on one worker thread, report on main."""

    def __init__(self, source: FrameSource, on_code: Callable[[str], None], *,
                 interval_s: float = 0.1, repeat_s: float = 5.0) -> None:
        from kivy.clock import Clock

        self._clock = Clock
        self.source = source
        self.reader = QrReader(lambda text: Clock.schedule_once(lambda _dt: on_code(text), 0),
                               repeat_s=repeat_s)
        self.interval_s = interval_s
        self._busy = threading.Lock()
        self._event: Any = None

    def start(self) -> CameraScanner:
        self._event = self._clock.schedule_interval(self._poll, self.interval_s)
        return self

    def _poll(self, _dt: float) -> None:
        if self._busy.locked():
            return  # still decoding the last frame: skip this one
        img = self.source.frame()
        if img is None:
            return
        self._busy.acquire()
        threading.Thread(target=self._decode, args=(img,), name="kiosk-qr", daemon=True).start()

    def _decode(self, img: Image.Image) -> None:
        try:
            self.reader.feed(img)
        except Exception:
            log.exception("decoding a camera frame failed")
        finally:
            self._busy.release()

    def stop(self) -> None:
        if self._event is not None:
            self._event.cancel()
        self.source.close()


def open_camera(spec: str) -> FrameSource:
    """``kivy``, ``kivy:INDEX`` or ``dir:PATH`` -> a frame source (ValueError otherwise)."""
    kind, _, arg = spec.partition(":")
    if kind == "dir" and arg:
        return DirectoryFrames(arg)
    if kind == "kivy":
        return KivyCameraFrames(int(arg) if arg else 0)
    raise ValueError(f"--camera {spec!r}: use kivy, kivy:INDEX or dir:PATH")
