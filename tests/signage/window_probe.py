"""Run a player in a real Kivy window until its frame is shown; take a screenshot (test helper).

Usage: python -m tests.signage.window_probe CACHE_DIR FRAMES_DIR SCREENSHOT
(under Xvfb at 1920x1080, started by the test).
"""

from __future__ import annotations

import sys

from contract.playlists import parse_playlists
from signage.cache import ScreenCache
from signage.player import Player
from signage.profiles import LANDSCAPE
from signage.sinks import DiskSink
from signage.window import WindowSink, run_window

DOC = {"playlists": [{"id": "p", "zones": ["*"], "items": [
    {"kind": "text", "id": "hello", "title": "Bienvenue à Vitrine",
     "body": "Écran de test sous Xvfb", "duration_s": 60}]}]}


def main(cache_dir: str, frames_dir: str, screenshot: str) -> None:
    sink = WindowSink(DiskSink(frames_dir, "sign-probe"))
    player = Player("sign-probe", "shoes", LANDSCAPE, ScreenCache(cache_dir), sink)
    player.set_playlists(parse_playlists(DOC))
    since_handed: list[int] = []

    def tick() -> None:
        """The screenshot once the frame is on screen, not at a fixed time: on a loaded
        machine the first frame can take longer than any fixed wait."""
        player.tick()
        if sink.pending is not None:  # this tick hands the frame to the window
            since_handed[:] = [0]
        elif since_handed:
            since_handed[0] += 1
            if since_handed[0] == 2:  # drawn since: Kivy draws after each round of ticks
                from kivy.app import App
                from kivy.core.window import Window

                Window.screenshot(name=screenshot)
                App.get_running_app().stop()

    # 60 s: a safety net only (no screenshot then, and the test says so)
    run_window(sink, tick, LANDSCAPE.size, fullscreen=False, stop_after_s=60.0)


if __name__ == "__main__":
    main(*sys.argv[1:4])
