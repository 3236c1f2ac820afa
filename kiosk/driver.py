"""A simulated shopper at the kiosk: real touches on the real window, screenshots, timings.

Used by the window tests, ``make demo`` and ``bench.kiosk``. A script is a list
of steps, each a small dict, run one after the other on Kivy's clock::

    {"tap": "start"}                      # a touch on the widget with that kv id
    {"type": "kettle"}                    # keystrokes into the search field
    {"tap_text": "Kettle"}                # a touch on the first widget showing that text
    {"card": {"uid": "...", "ndef": "<base64>"}}   # the kiosk's NFC reader reads a tag
    {"wait": "greeting", "timeout": 5}    # until that screen shows (and nothing pending)
    {"shot": "greeting"}                  # save docs-quality PNG of the window
    {"expect": "1500 points"}             # this text is visible on the current screen
    {"forbid": ["1500", "Kettle"]}        # none of these anywhere, on any screen
    {"sleep": 0.5}
    {"wait": "greeting", "settled": false}  # shown, without waiting for the fade to end
    {"rss": "after_10"}                   # note this process's resident memory (KiB)
    {"fill": {"f_city": "Lyon"}}          # touch each field, type into it key by key
    {"wait_image": "picture", "timeout": 5}  # until that Image widget shows a file
    {"camera": "/path/qr.png"}            # hold a picture to the camera (--camera dir:...)
    {"grab_screen": "fullscreen"}         # save what the X server shows (the whole screen)
    {"keyboard_clear_of": ["f_city"]}     # a docked on-screen keyboard is up, not over these

Touches are dispatched through Kivy's event loop as motion events, so they hit
whatever is really under that point on screen (a covered or invisible button
is not pressed). Each step's duration is recorded in :attr:`ShopperDriver.timings`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kivy.base import EventLoop
from kivy.clock import Clock
from kivy.input.motionevent import MotionEvent
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView
from kivy.uix.textinput import TextInput
from kivy.uix.widget import Widget

from .app import KioskApp

log = logging.getLogger("vitrine.kiosk.driver")


class DriverError(AssertionError):
    """A step could not be done: missing widget, screen never shown."""


class _Touch(MotionEvent):
    def __init__(self, x: float, y: float) -> None:
        super().__init__("vitrine-driver", id(self), {"x": x, "y": y}, is_touch=True)

    def depack(self, args: dict[str, float]) -> None:
        win = EventLoop.window
        self.is_touch = True
        self.sx = args["x"] / win.width
        self.sy = args["y"] / win.height
        self.profile = ["pos"]
        super().depack(args)


def rss_kib() -> int:
    """Resident set size of this process (Linux ``/proc``), KiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * (os.sysconf("SC_PAGE_SIZE") // 1024)


def walk(widget: Widget) -> Iterator[Widget]:
    yield widget
    for child in widget.children:
        yield from walk(child)


def ancestors(widget: Widget) -> Iterator[Widget]:
    w = widget.parent
    while w is not None and w is not w.parent:
        yield w
        w = w.parent


def visible(widget: Widget, *, tappable: bool = True) -> bool:
    """Shown (and, if ``tappable``, not disabled: a greyed-out row can be read, not tapped)."""
    w: Widget | None = widget
    while w is not None and w is not w.parent:
        if getattr(w, "opacity", 1) == 0 or (tappable and getattr(w, "disabled", False)):
            return False
        w = w.parent
    return True


class ShopperDriver:
    def __init__(self, app: KioskApp, steps: list[dict[str, Any]], *,
                 screenshots: Path | None = None, step_pause_s: float = 0.05,
                 on_done: Callable[[ShopperDriver], None] | None = None,
                 card_reader: Callable[[str, str | None], None] | None = None,
                 camera_dir: Path | None = None) -> None:
        self.app = app
        self.camera_dir = camera_dir
        self.steps = list(steps)
        self.screenshots = screenshots
        self.step_pause_s = step_pause_s
        self.on_done = on_done
        self.card_reader = card_reader or app.flow.card_read
        self.timings: list[tuple[str, float]] = []
        self.log: list[str] = []
        self.error: str | None = None
        #: Resident memory (KiB) noted by ``rss`` steps.
        self.marks: dict[str, int] = {}
        self._i = 0
        self._started = 0.0
        self._acted_at = 0.0

    # -- finding things on screen ----------------------------------------------------
    def current(self) -> Widget:
        assert self.app.sm is not None
        return self.app.sm.current_screen

    def find(self, kv_id: str) -> Widget:
        for w in walk(self.current()):
            ids = getattr(w, "ids", {})
            if kv_id in ids and visible(ids[kv_id]):
                return ids[kv_id]
        raise DriverError(f"no visible widget {kv_id!r} on screen {self.app.sm.current}")

    def find_text(self, text: str, *, tappable: bool = True) -> Widget:
        found = [w for w in walk(self.current())
                 if isinstance(w, Label) and text in w.text and visible(w, tappable=tappable)]
        exact = [w for w in found if w.text == text]
        if exact or found:
            # what a shopper would tap: an exact match, on screen, the highest one
            win = EventLoop.window

            def rank(w: Widget) -> tuple[bool, float]:
                x, y = w.to_window(*w.center)
                return (not (0 <= x <= win.width and 0 <= y <= win.height), -y)

            return sorted(exact or found, key=rank)[0]
        raise DriverError(f"no visible text {text!r} on screen {self.app.sm.current}")

    def texts(self) -> list[str]:
        """Every text on the current screen (tests check what a shopper could read)."""
        out = []
        for w in walk(self.current()):
            if isinstance(w, Label | TextInput) and w.text and visible(w):
                out.append(w.text)
        return out

    def all_texts(self) -> list[str]:
        """Every text held by any screen, shown or not (what a wipe must have cleared)."""
        assert self.app.sm is not None
        out = []
        for screen in self.app.sm.screens:
            for w in walk(screen):
                if isinstance(w, Label | TextInput) and w.text:
                    out.append(w.text)
        return out

    # -- actions ------------------------------------------------------------------------
    def touch(self, widget: Widget) -> None:
        x, y = widget.to_window(*widget.center)
        t = _Touch(x, y)
        EventLoop.post_dispatch_input("begin", t)
        EventLoop.post_dispatch_input("end", t)

    def type_text(self, text: str, kv_id: str = "query") -> None:
        field = self.find(kv_id)
        assert isinstance(field, TextInput)
        self.touch(field)
        for ch in text:  # one keystroke at a time: search as you type
            field.insert_text(ch)

    def show_camera(self, picture: str) -> None:
        """Hold ``picture`` up to the kiosk's camera: it appears in the frame directory
        (renamed in whole, as a camera driver would write a frame)."""
        if self.camera_dir is None:
            raise DriverError("no camera directory (run the kiosk with --camera dir:PATH)")
        self.camera_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}{Path(picture).suffix}"
        tmp = self.camera_dir / f".{name}.part"
        tmp.write_bytes(Path(picture).read_bytes())
        os.replace(tmp, self.camera_dir / name)

    def keyboard_clear_of(self, kv_ids: list[str]) -> None:
        """Kivy's docked keyboard is on screen and overlaps none of ``kv_ids``."""
        from kivy.uix.vkeyboard import VKeyboard

        win = EventLoop.window
        boards = [w for w in win.children if isinstance(w, VKeyboard)]
        if not boards:
            raise DriverError("no on-screen keyboard is docked")
        top = max(b.top for b in boards)
        for kv_id in kv_ids:
            widget = self.find(kv_id)
            _, bottom = widget.to_window(widget.x, widget.y)
            if bottom < top:
                raise DriverError(f"{kv_id!r} (bottom at {bottom:.0f}) is under the keyboard "
                                  f"(top at {top:.0f})")

    def grab_screen(self, name: str) -> Path | None:
        """What the X server shows, whole screen (not Kivy's own idea of its window)."""
        if self.screenshots is None:
            return None
        from PIL import ImageGrab

        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / f"{name}.png"
        ImageGrab.grab(xdisplay=os.environ.get("DISPLAY")).save(path)
        return path

    def shot(self, name: str) -> Path | None:
        if self.screenshots is None:
            return None
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / f"{name}.png"
        self.app.root.export_to_png(str(path))
        return path

    # -- running -----------------------------------------------------------------------
    def start(self) -> None:
        # Kivy's clock holds bound methods weakly: the app keeps its shopper alive.
        self.app.driver = self
        Clock.schedule_once(self._next, 0)

    def _ready(self, screen: str, settled: bool = True) -> bool:
        flow = self.app.flow
        return (self.app.sm is not None and self.app.sm.current == screen
                and flow.screen == screen and not flow.shopper.profile_pending
                and not (settled and self.app.sm.transition.is_active))

    def _next(self, _dt: float = 0) -> None:
        if self._i >= len(self.steps):
            self._finish()
            return
        step = self.steps[self._i]
        self._started = time.monotonic()
        try:
            if "wait" in step:
                self._wait(step["wait"], float(step.get("timeout", 5.0)),
                           bool(step.get("settled", True)))
                return
            if "wait_image" in step:
                self._wait_image(step["wait_image"], float(step.get("timeout", 5.0)))
                return
            done = self._do(step)
        except Exception as exc:
            self.error = f"step {self._i} {step}: {exc}"
            log.error("simulated shopper stopped: %s", self.error)
            self._finish()
            return
        if done:
            self._advance(float(step.get("sleep", 0)))

    def _do(self, step: dict[str, Any]) -> bool:
        """Do ``step``; False when it finishes later by itself (a tap after a scroll)."""
        self._acted_at = time.monotonic()
        if "tap" in step:
            self.touch(self.find(step["tap"]))
        elif "tap_text" in step:
            target = self.find_text(step["tap_text"])
            scroller = next((w for w in ancestors(target) if isinstance(w, ScrollView)), None)
            x, y = target.to_window(*target.center)
            on_screen = scroller is None or scroller.collide_point(
                *scroller.to_widget(x, y, relative=False))
            if not on_screen:  # a shopper scrolls to what they want, then taps it
                scroller.scroll_to(target, padding=10, animate=False)
                # a ScrollView still moving eats a touch (it stops the scroll): let it rest
                assert scroller is not None
                Clock.schedule_once(lambda _dt: self._tap_later(target, step), 0.3)
                return False
            self.touch(target)
        elif "type" in step:
            self.type_text(step["type"])
        elif "fill" in step:
            for kv_id, text in step["fill"].items():
                self.type_text(text, kv_id)
        elif "camera" in step:
            self.show_camera(step["camera"])
        elif "grab_screen" in step:
            self.grab_screen(step["grab_screen"])
        elif "keyboard_clear_of" in step:
            self.keyboard_clear_of(step["keyboard_clear_of"])
        elif "card" in step:
            self.card_reader(step["card"]["uid"], step["card"].get("ndef"))
        elif "shot" in step:
            self.shot(step["shot"])
        elif "rss" in step:
            self.marks[step["rss"]] = rss_kib()
        elif "expect" in step:
            self.find_text(step["expect"], tappable=False)
        elif "forbid" in step:
            left = [t for t in self.all_texts() for bad in step["forbid"] if bad in t]
            if left:
                raise DriverError(f"still on screen: {left}")
        elif "call" in step:
            step["call"](self)
        elif "sleep" not in step:
            raise DriverError(f"unknown step {step}")
        self._record(step)
        return True

    def _tap_later(self, target: Widget, step: dict[str, Any]) -> None:
        self.touch(target)
        self._record(step)
        self._advance(float(step.get("sleep", 0)))

    def _record(self, step: dict[str, Any]) -> None:
        label = next(iter(step))
        value = step[label]
        self.timings.append((f"{label}:{value if isinstance(value, str) else ''}",
                             time.monotonic() - self._started))
        text = f"{label} {value if isinstance(value, str) else ''}".strip()
        if label == "wait":  # what the shopper now sees
            shown = [t.replace("\n", " ")[:40] for t in self.texts()[:6]]
            text += f" ({self.timings[-1][1] * 1000:.0f} ms): " + " | ".join(reversed(shown))
        self.log.append(text)
        if label != "sleep":
            log.info("shopper: %s", text)

    def _advance(self, sleep: float) -> None:
        self._i += 1
        nxt = self.steps[self._i] if self._i < len(self.steps) else {}
        # A wait starts watching at once: its timing is the screen's, not the pause's.
        pause = 0 if "wait" in nxt else self.step_pause_s
        Clock.schedule_once(self._next, max(sleep, pause))

    def _wait(self, screen: str, timeout: float, settled: bool) -> None:
        """Until ``screen`` shows; its timing runs from the action before (tap -> screen)."""
        started = self._started
        since = self._acted_at

        def poll(_dt: float) -> None:
            if self._ready(screen, settled):
                self._started = since
                self._record({"wait": screen})
                self._advance(0)
            elif time.monotonic() - started > timeout:
                self.error = (f"step {self._i}: screen {screen!r} not shown in {timeout} s "
                              f"(on {self.app.sm.current}, message {self.app.message_text!r})")
                log.error("simulated shopper stopped: %s", self.error)
                self._finish()
            else:
                Clock.schedule_once(poll, 0.005)

        poll(0)

    def _wait_image(self, kv_id: str, timeout: float) -> None:
        """Until the Image ``kv_id`` on this screen shows a file with pixels in it."""
        started = self._started

        def poll(_dt: float) -> None:
            try:
                img = self.find(kv_id)
                shown = bool(getattr(img, "source", "")) and img.texture is not None
            except DriverError:
                shown = False
            if shown:
                self._record({"wait_image": kv_id})
                self._advance(0)
            elif time.monotonic() - started > timeout:
                self.error = f"step {self._i}: image {kv_id!r} not shown in {timeout} s"
                log.error("simulated shopper stopped: %s", self.error)
                self._finish()
            else:
                Clock.schedule_once(poll, 0.02)

        poll(0)

    def _finish(self) -> None:
        if self.on_done is not None:
            self.on_done(self)
