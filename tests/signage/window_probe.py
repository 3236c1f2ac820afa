"""Run a player in a real Kivy window for a few seconds and take a screenshot (test helper).

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
    run_window(sink, player.tick, LANDSCAPE.size, fullscreen=False, stop_after_s=3.0,
               screenshot=screenshot)


if __name__ == "__main__":
    main(*sys.argv[1:4])
