"""signage.window: the player's frame really reaches a Kivy window (Xvfb, OpenGL by Mesa)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PIL import Image

from kiosk.display import start_xvfb

from .imagecompare import mean_abs_diff


@pytest.mark.integration
def test_frame_is_shown_full_screen_in_a_kivy_window(tmp_path):
    shot = tmp_path / "shot.png"
    env = {**os.environ, "KIVY_HOME": str(tmp_path / "kivy"), "KIVY_NO_ARGS": "1"}
    # Xvfb picks a free display itself (-displayfd): ``xvfb-run -a`` guesses one from the
    # lock files and, when another test's Xvfb takes that number first, runs the probe on
    # the other test's screen.
    display = start_xvfb("1920x1080x24")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.signage.window_probe", str(tmp_path / "cache"),
             str(tmp_path / "frames"), str(shot)], env=display.env(env), capture_output=True,
            text=True, timeout=120,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    finally:
        display.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    shots = sorted(tmp_path.glob("shot*.png"))
    assert shots, f"no screenshot; stderr: {proc.stderr[-2000:]}"
    window = Image.open(shots[-1]).convert("RGB")
    frame = Image.open(tmp_path / "frames" / "sign-probe.jpg").convert("RGB")
    assert window.size == (1920, 1080)
    assert mean_abs_diff(window, frame) < 2.0
    assert mean_abs_diff(window, Image.new("RGB", window.size)) > 10  # not a black window
