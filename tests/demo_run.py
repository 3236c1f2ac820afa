"""Run `vitrine demo` until what a test looks for has happened, then Ctrl-C it.

A fixed ``--duration`` is both slow (the whole duration is waited out even when everything
was seen in the first half) and flaky (on a loaded machine the kiosk's shopper may not have
reached the pickup screen when the clock runs out). So the demo runs until stopped, its
output is read line by line, and it gets SIGINT (the demo's own "Ctrl-C stops everything")
only once every marker the test needs is in, or when a generous deadline has passed; the
test then asserts on the whole output as before, including the DONE summary that the demo
prints after a clean stop.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    seen_all: bool  # every marker was in before the deadline


def run_demo_until(argv: list[str], markers: list[str], *, cwd: Path | None = None,
                   ready: Callable[[str], bool] | None = None, deadline_s: float = 150.0,
                   stop_timeout_s: float = 60.0) -> DemoRun:
    """Start ``python <argv>`` (a demo with no ``--duration``), wait until every regex of
    ``markers`` has matched its output and ``ready(output)`` holds, then SIGINT it and wait
    for it to exit. Returns the exit code and the full output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    out: list[str] = []
    err: list[str] = []
    changed = threading.Condition()

    def pump(stream, sink: list[str]) -> None:
        for line in stream:
            with changed:
                sink.append(line)
                changed.notify_all()
        with changed:
            changed.notify_all()

    readers = [threading.Thread(target=pump, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err), daemon=True)]
    for t in readers:
        t.start()
    pending = [re.compile(m) for m in markers]
    end = time.monotonic() + deadline_s
    seen_all = False
    try:
        with changed:
            while proc.poll() is None:
                text = "".join(out)
                pending = [m for m in pending if not m.search(text)]
                if not pending and (ready is None or ready(text)):
                    seen_all = True
                    break
                left = end - time.monotonic()
                if left <= 0:
                    break
                changed.wait(min(left, 0.5))  # 0.5 s: ``ready`` may look at files too
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(stop_timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for t in readers:
        t.join(10)
    return DemoRun(proc.returncode, "".join(out), "".join(err), seen_all)
