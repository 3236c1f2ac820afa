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
