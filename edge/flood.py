"""Per-device rate limits, and the cut-off of a device that floods the store.

Every device message shares one queue at the broker, the edge's session: a
device publishing 100k messages a second fills it, delays everybody else's
taps and, once ``max_queued_messages`` is reached, makes the broker drop other
devices' messages while it tells them "success". Mosquitto 2.0 has no
per-client rate limit, so the edge enforces one where every message passes,
in the MQTT network thread, before anything is parsed:

* each device has a token bucket, ``device_rate_limit`` messages per second
  sustained with a burst of ``device_burst`` (big enough for a device replaying
  its offline buffer, or the broker replaying a backlog after an edge restart);
* a device that empties its bucket is **cut off**: the edge disables its login
  at the broker (dynamic-security plugin: the broker disconnects it at once and
  refuses it until reinstated), and acknowledges whatever of it is still queued
  without storing it (counted: ``flood_dropped``), so that the other devices'
  messages behind the flood reach the pipeline at the edge's full speed;
* a backlog is not a flood: when the edge (re)connects after being away ``D``
  seconds, each device may legitimately have ``device_rate_limit x D`` messages
  queued at the broker, so every bucket is credited that much once
  (:meth:`FloodGuard.credit`); the limit holds over time, offline time included;
* the cut-off lasts ``flood_cutoff_s``, then the edge reinstates the device;
  ``vitrine edge reinstate ID`` ends it earlier. Both are recorded in the
  ``device_cutoffs`` table and shown on the panel's devices page.

The check costs a dictionary lookup and a few float operations per message.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("vitrine.edge.flood")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class FloodGuard:
    """Token buckets per device id; thread-safe enough for one producer (paho's thread)."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = float(max(1, burst))
        self._buckets: dict[str, _Bucket] = {}
        #: Backlog allowance given to buckets created after the last :meth:`credit`.
        self.burst_credit = 0.0
        self._credit_until = 0.0
        #: device id -> messages dropped since the cut-off (read by the writer thread).
        self.cut: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def admit(self, device_id: str, now: float | None = None) -> bool | None:
        """True: go on. False: the device is cut off, drop. None: it just crossed the limit."""
        # Once per device message, in paho's thread: plain comparisons, no max()/min().
        if self.cut and device_id in self.cut:
            with self._lock:
                if device_id in self.cut:
                    self.cut[device_id] += 1
                    return False
        rate = self.rate
        if rate <= 0:
            return True
        if now is None:
            now = time.monotonic()
        b = self._buckets.get(device_id)
        if b is None:
            credit = self.burst_credit if now < self._credit_until else 0.0
            b = self._buckets[device_id] = _Bucket(self.burst + credit, now)
            tokens = b.tokens
        else:
            # Refill up to the burst; a credit above it (a backlog) is spent, not refilled.
            tokens = b.tokens
            if tokens < self.burst:
                tokens += (now - b.at) * rate
                if tokens > self.burst:
                    tokens = self.burst
            b.at = now
        tokens -= 1.0
        b.tokens = tokens
        if tokens >= 0:
            return True
        with self._lock:
            self.cut[device_id] = 0
        return None

    def credit(self, away_s: float) -> None:
        """The edge was away ``away_s`` seconds: allow every device that much backlog."""
        if self.rate <= 0 or away_s <= 0:
            return
        extra = self.rate * away_s
        with self._lock:
            self.burst_credit = extra
            # Devices first heard while the backlog drains get it too, not those heard later.
            self._credit_until = time.monotonic() + max(60.0, away_s)
            for b in self._buckets.values():
                b.tokens = max(b.tokens, 0.0) + extra

    def restore(self, device_id: str) -> None:
        """Forget a cut-off (the device was reinstated): a full bucket again."""
        with self._lock:
            self.cut.pop(device_id, None)
            self._buckets.pop(device_id, None)

    def mark_cut(self, device_id: str) -> None:
        """Remember a cut-off decided earlier (read from the database at start)."""
        with self._lock:
            self.cut.setdefault(device_id, 0)

    def take_dropped(self) -> dict[str, int]:
        """Messages dropped per cut-off device since the last call."""
        with self._lock:
            out = {d: n for d, n in self.cut.items() if n}
            for d in out:
                self.cut[d] = 0
        return out
