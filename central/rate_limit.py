"""Per-credential rate limit of customer lookups (token bucket, per worker process).

A store token is used by a handful of tablets; a few lookups a second is
generous for them, while a leaked token used to walk the customer ids is
slowed to the same pace (and the 404 it gets for customers it may not see is
the same as for customers who do not exist). Buckets live in the worker's
memory: with ``N`` workers behind the load balancer a credential gets at most
``N`` times the configured rate, which docs/operations.md states.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``allow(key, per_minute)`` -> seconds to wait (0.0: allowed, one token taken)."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, key: str, per_minute: int) -> float:
        now = self._clock()
        rate = per_minute / 60.0
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(per_minute), now)
            bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate
