"""A display for the kiosk when there is none: Xvfb on a free display number.

Tests, ``make demo`` and ``bench.kiosk`` run the real Kivy window headless.
Xvfb picks the display number itself (``-displayfd``), so two runs never
fight over ``:99``.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass


class DisplayError(RuntimeError):
    """No display could be started (Xvfb missing or failing)."""


@dataclass
class VirtualDisplay:
    process: subprocess.Popen[bytes]
    display: str  # ":N"
    #: The read end of Xvfb's ``-displayfd`` pipe, kept open while it runs: Xvfb may
    #: write to it after the number we read, and a closed pipe is fatal to it
    #: ("Cannot write display number to fd"): the display vanished mid-test.
    displayfd: int = -1

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["DISPLAY"] = self.display
        return env

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.displayfd >= 0:
            os.close(self.displayfd)
            self.displayfd = -1


def start_xvfb(size: str = "1280x800x24", timeout: float = 10.0) -> VirtualDisplay:
    exe = shutil.which("Xvfb")
    if exe is None:
        raise DisplayError("Xvfb is not installed (scripts/system-deps.sh test installs it)")
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [exe, "-displayfd", str(write_fd), "-screen", "0", size, "-nolisten", "tcp",
             "-noreset"], pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
    finally:
        os.close(write_fd)
    got = b""
    deadline = time.monotonic() + timeout
    while not got.endswith(b"\n") and len(got) < 32:  # "N\n", possibly in pieces
        ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(read_fd, 32) if ready else b""
        if not chunk:
            break
        got += chunk
    number = got.decode(errors="replace").strip()
    if not number.isdigit():
        os.close(read_fd)
        proc.kill()
        proc.wait(5)
        raise DisplayError(f"Xvfb did not report a display within {timeout} s")
    return VirtualDisplay(proc, f":{number}", read_fd)
