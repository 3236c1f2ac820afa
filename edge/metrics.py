"""In-process counters of the edge node, exposed on the panel and in logs.

Counters only ever go up (like Prometheus counters) so that a scraper can
compute rates; gauges are the few values that are levels (queue depth).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: Counter[str] = Counter()
        self._gauges: dict[str, float] = {}
        self.commit_ms_max = 0.0
        self.commit_ms_total = 0.0

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    def add_many(self, counts: Counter[str]) -> None:
        with self._lock:
            self._counters.update(counts)

    def gauge(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = value

    def commit(self, ms: float, size: int) -> None:
        with self._lock:
            self._counters["batches"] += 1
            self._counters["batched_messages"] += size
            self.commit_ms_total += ms
            self.commit_ms_max = max(self.commit_ms_max, ms)

    def get(self, name: str) -> int:
        with self._lock:
            return self._counters.get(name, 0)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            batches = self._counters.get("batches", 0)
            return {
                "counters": dict(sorted(self._counters.items())),
                "gauges": dict(self._gauges),
                "commit_ms_avg": round(self.commit_ms_total / batches, 3) if batches else 0.0,
                "commit_ms_max": round(self.commit_ms_max, 3),
            }
