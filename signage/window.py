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


def x11_display_size() -> tuple[int, int] | None:
    """The X display's size in pixels (libX11), or None when not on X11 or unknown.

    Why it is needed: SDL's "desktop" full screen (Kivy's ``fullscreen = auto``) asks
    the window manager to make the window full screen (``_NET_WM_STATE_FULLSCREEN``).
    A signage player often boots straight into X with no window manager: the request
    goes nowhere and the window keeps the size it was created with, centred: a
    1920x1080 window on a 1280x720 screen showed its middle, cropped (seen under
    Xvfb, where Kivy's own screenshot still looked right). Creating the window at the
    display's size makes it cover the display with or without a window manager.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("X11")
    if not name or not os.environ.get("DISPLAY"):
        return None
    try:
        x11 = ctypes.CDLL(name)
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
        x11.XDisplayWidth.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        display = x11.XOpenDisplay(None)
        if not display:
            return None
        try:
            screen = x11.XDefaultScreen(display)
            size = (x11.XDisplayWidth(display, screen), x11.XDisplayHeight(display, screen))
        finally:
            x11.XCloseDisplay(display)
    except (OSError, AttributeError):
        return None
    return size if min(size) > 0 else None


def run_window(sink: WindowSink, tick: Callable[[], object], size: tuple[int, int], *,
               fullscreen: bool = True,
               tick_s: float = 0.1, stop_after_s: float | None = None,
               screenshot: str | None = None,
               stop_requested: Callable[[], bool] | None = None) -> None:
    """Open the window and run until it is closed, ``stop_requested()`` (SIGTERM) or
    ``stop_after_s``."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    from kivy.config import Config

    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    # Full screen: the window is created at the display's size (see
    # x11_display_size), the frame is then scaled to it keeping its shape. Windowed:
    # the profile's size.
    width, height = (x11_display_size() or size) if fullscreen else size
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
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
            if stop_requested is not None and stop_requested():
                self._finish(0.0)
                return
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
