"""The poll loop both store pushers run (stock changes, erasure nudges).

Poll, and on a failure worth retrying (broker gone or refusing, database locked
or unreachable) back off exponentially up to a cap, never skipping what was not
pushed: the next poll starts from the same cursor. Anything else is a bug and is
raised, so the supervisor restarts the pusher loudly.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable

from central.errors import CentralError


class PushError(Exception):
    """The broker did not take a message (not connected, refused, no ack in time)."""


#: Failures worth retrying: broker gone or refusing, database locked or unreachable.
TRANSIENT = (PushError, CentralError, sqlite3.Error, OSError)


def is_db_error(exc: BaseException) -> bool:
    """psycopg's errors (and the pool's timeout) without importing psycopg on SQLite."""
    return type(exc).__module__.split(".")[0] in ("psycopg", "psycopg_pool")


def run_with_backoff(push_once: Callable[[], object], stop: threading.Event, *,
                     interval_s: float, backoff_cap_s: float, counters: Counter[str],
                     log: logging.Logger, what: Callable[[], str]) -> None:
    """Call ``push_once`` every ``interval_s`` until ``stop``; back off on transient failures.

    ``what`` names the push in the warning (e.g. with the cursor it will retry from).
    """
    failures = 0
    while not stop.is_set():
        try:
            push_once()
            failures = 0
            delay = interval_s
        except Exception as exc:
            if not isinstance(exc, TRANSIENT) and not is_db_error(exc):
                raise  # a bug: loud, and the supervisor restarts us from the cursor
            failures += 1
            counters["failures_total"] += 1
            delay = min(backoff_cap_s, interval_s * 2 ** min(failures, 16))
            log.warning("%s failed (%s); retry %d in %.1f s", what(), exc, failures, delay)
        stop.wait(delay)


class NudgeBridge:
    """Publishes ``{"seq": N}`` whenever the newest seq of a store's log grows.

    The erasure and order pushes are this: a nudge, never the data, so an edge
    pulls what is new over its authenticated HTTP link. No cursor is persisted:
    at start the bridge nudges once with the current newest seq (an edge that
    is up to date just pulls nothing), so a change made while the bridge was
    down reaches online edges as soon as it is back.
    """

    def __init__(self, newest: Callable[[], int], publish: Callable[[bytes], None],
                 message: Callable[[int], bytes], *, what: str, log: logging.Logger,
                 interval_s: float = 0.5, backoff_cap_s: float = 30.0) -> None:
        self.newest = newest
        self.publish = publish
        self.message = message
        self.what = what
        self.log = log
        self.interval_s = interval_s
        self.backoff_cap_s = backoff_cap_s
        #: Newest seq the broker acknowledged; -1 = nudge once at start.
        self.pushed = -1
        self.counters: Counter[str] = Counter(messages_total=0, failures_total=0)
        self._stop = threading.Event()

    def push_once(self) -> bool:
        """Nudge if there is a seq newer than the last nudge; True if one was sent."""
        seq = self.newest()
        if seq <= self.pushed or (self.pushed < 0 and seq == 0):
            self.pushed = max(self.pushed, seq)
            return False
        self.publish(self.message(seq))
        self.pushed = seq
        self.counters["messages_total"] += 1
        self.log.info("%s nudge: up to seq %d", self.what, seq)
        return True

    def run(self) -> None:
        """Poll until :meth:`stop`; a failed nudge is retried (backoff), never skipped."""
        run_with_backoff(self.push_once, self._stop, interval_s=self.interval_s,
                         backoff_cap_s=self.backoff_cap_s, counters=self.counters,
                         log=self.log, what=lambda: self.what)

    def stop(self) -> None:
        self._stop.set()
