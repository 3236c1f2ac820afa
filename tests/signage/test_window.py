"""`vitrine signage play` with a display: full screen by default, showing the player's frame.

Under Xvfb (OpenGL by Mesa) with a 1280x720 screen, smaller than the 1920x1080 landscape
profile: the real command runs from a cached playlist (no broker reachable), X itself
reports its window covering the whole screen at (0, 0), and a capture of the X screen
is the frame the player rendered, scaled to the screen.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from contract.playlists import parse_playlists
from kiosk.display import start_xvfb
from signage.cache import ScreenCache

from .imagecompare import mean_abs_diff

ROOT = Path(__file__).resolve().parents[2]
DOC = {"playlists": [{"id": "p", "zones": ["*"], "items": [
    {"kind": "text", "id": "hello", "title": "Bienvenue à Vitrine",
     "body": "Plein écran sous Xvfb", "duration_s": 60}]}]}
#: Runs inside the Xvfb session: the player, then, once it has rendered, what X shows.
SCRIPT = """
"$PY" -m vitrine signage play --screen sign-x --zone shoes --port 1 \
  --password-file "$D/pw" --cache-dir "$D/cache" --frames-dir "$D/frames" \
  --stop-after-s 60 > "$D/play.log" 2>&1 &
pid=$!
for i in $(seq 300); do [ -f "$D/frames/sign-x.jpg" ] && break; sleep 0.1; done
sleep 1.5
xwininfo -root -tree > "$D/tree.txt"
"$PY" -c "from PIL import ImageGrab; ImageGrab.grab().save('$D/screen.png')"
kill -TERM $pid
wait $pid
echo "exit $?" > "$D/exit.txt"
"""


@pytest.mark.integration
def test_play_is_full_screen_by_default_and_shows_the_frame(tmp_path):
    ScreenCache(tmp_path / "cache").save_playlists(parse_playlists(DOC))
    (tmp_path / "pw").write_text("unused: the broker is unreachable\n")
    env = {**os.environ, "KIVY_HOME": str(tmp_path / "kivy"), "KIVY_NO_ARGS": "1",
           "PY": sys.executable, "D": str(tmp_path)}
    env.pop("WAYLAND_DISPLAY", None)
    # Xvfb picks a free display itself (-displayfd), never another test's (xvfb-run -a can).
    display = start_xvfb("1280x720x24")
    try:
        proc = subprocess.run(["sh", "-c", SCRIPT], env=display.env(env), capture_output=True,
                              text=True, timeout=120, cwd=ROOT)
    finally:
        display.stop()
    log = (tmp_path / "play.log").read_text() if (tmp_path / "play.log").exists() else ""
    assert proc.returncode == 0, proc.stderr[-2000:] + log[-2000:]
    # SIGTERM (a service manager stopping it) closes the window and exits cleanly
    assert (tmp_path / "exit.txt").read_text().strip() == "exit 0", log[-2000:]
    # X: a top-level window of exactly the screen's size at its origin
    tree = (tmp_path / "tree.txt").read_text()
    assert re.search(r"\b1280x720\+0\+0\b", tree), tree
    # What the screen shows (X's root window, not the app's own screenshot, which looked
    # right while the window was in fact 1920x1080, centred and cropped): the frame.
    screen = Image.open(tmp_path / "screen.png").convert("RGB")
    frame = Image.open(tmp_path / "frames" / "sign-x.jpg").convert("RGB")
    assert frame.size == (1920, 1080) and screen.size == (1280, 720)
    assert mean_abs_diff(screen, frame.resize(screen.size)) < 2.0
    assert mean_abs_diff(screen, Image.new("RGB", screen.size)) > 10  # not a black screen
