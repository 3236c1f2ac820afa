"""Full-screen Kivy window for a screen with a display.

Kivy is imported only here (and only when a display exists), so a headless
screen, the tests of the player and the edge never load it. The player ticks
on Kivy's clock (main thread, every ``tick_s``); frames are uploaded to a
texture there; commands still arrive on the session's network thread, which
the player's lock serialises with ticks. Every frame is also written to disk
by the wrapped :class:`signage.sinks.DiskSink`, so the panel sees what the
window shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PIL import Image

from contract.screen_items import Item

from .sinks import DiskSink


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class WindowSink:
    """Shows frames in the Kivy window and forwards them to the disk sink."""

    def __init__(self, disk: DiskSink):
        self.disk = disk
        self.pending: Image.Image | None = None

    def show(self, image: Image.Image, item: Item, trigger: str) -> None:
        self.pending = image
        self.disk.show(image, item, trigger)


def run_window(sink: WindowSink, tick: Callable[[], object], size: tuple[int, int], *,
               fullscreen: bool = True,
               tick_s: float = 0.1, stop_after_s: float | None = None,
               screenshot: str | None = None) -> None:
    """Open the window and run until it is closed (or ``stop_after_s``)."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    from kivy.config import Config

    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    # The window opens at the profile's size (a panel without a window manager,
    # Xvfb); "auto" full screen then takes the display's own resolution.
    Config.set("graphics", "width", str(size[0]))
    Config.set("graphics", "height", str(size[1]))
    Config.set("graphics", "borderless", "1" if fullscreen else "0")
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.graphics.texture import Texture
    from kivy.uix.image import Image as KivyImage

    class ScreenApp(App):
        def build(self) -> KivyImage:
            Window.clearcolor = (0, 0, 0, 1)
            self.view = KivyImage(fit_mode="contain")
            Clock.schedule_interval(self._tick, tick_s)
            if stop_after_s is not None:
                Clock.schedule_once(self._finish, stop_after_s)
            return self.view

        def _tick(self, _dt: float) -> None:
            tick()
            image, sink.pending = sink.pending, None
            if image is None:
                return
            texture = Texture.create(size=image.size, colorfmt="rgb")
            texture.blit_buffer(image.tobytes(), colorfmt="rgb", bufferfmt="ubyte")
            texture.flip_vertical()
            self.view.texture = texture

        def _finish(self, _dt: float) -> None:
            if screenshot:
                Window.screenshot(name=screenshot)
            self.stop()

    ScreenApp().run()
