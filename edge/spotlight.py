"""Reactive spotlight without flicker: which ``show_product`` a screen gets, and when.

A tap or scan in zone Z puts that product on Z's screens; the screen holds it
for ``hold_s`` (the player's setting, default 15 s) and then returns to its
playlist. Shoppers tap in bursts (three products in a second, two people at
one shelf), and a screen that changes picture three times a second is noise,
so the edge debounces per screen, across batches:

* **same product again** while it is on screen: sent through (the player
  extends its hold; the picture does not change, so no flicker);
* **another product** when the current one has been up for at least
  ``min_show_s`` (default 3 s): sent at once;
* **another product** sooner than that: held back as *pending*; a later one
  replaces it (only the latest matters); when ``min_show_s`` has elapsed,
  :meth:`Debouncer.due` releases it. A burst of N taps in one second
  therefore shows at most two pictures: the first, and the last one 3 s later.

Within one committed batch ``edge.commands`` already keeps only the latest
product per screen; this class is the rule across batches. It is pure (the
caller passes the clock), so the rule is tested without a broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_MIN_SHOW_S = 3.0


@dataclass(slots=True)
class _Screen:
    gtin: str | None = None
    shown_at: float = float("-inf")
    pending: dict[str, Any] | None = None


@dataclass(slots=True)
class Debouncer:
    min_show_s: float = DEFAULT_MIN_SHOW_S
    screens: dict[str, _Screen] = field(default_factory=dict)
    held_total: int = 0
    replaced_total: int = 0

    def offer(self, screen: str, cmd: dict[str, Any], now: float) -> dict[str, Any] | None:
        """A new ``show_product`` for ``screen``: the command to send now, or None (held)."""
        state = self.screens.setdefault(screen, _Screen())
        gtin = cmd.get("gtin")
        if gtin == state.gtin:
            state.pending = None  # the shopper came back to what is on screen
            return cmd
        if now - state.shown_at >= self.min_show_s:
            state.gtin, state.shown_at, state.pending = gtin, now, None
            return cmd
        if state.pending is not None:
            self.replaced_total += 1
        else:
            self.held_total += 1
        state.pending = cmd
        return None

    def due(self, now: float) -> list[tuple[str, dict[str, Any]]]:
        """Pending commands whose screen has shown its product for ``min_show_s``."""
        out = []
        for screen, state in self.screens.items():
            if state.pending is not None and now - state.shown_at >= self.min_show_s:
                cmd, state.pending = state.pending, None
                state.gtin, state.shown_at = cmd.get("gtin"), now
                out.append((screen, cmd))
        return out

    def next_due(self) -> float | None:
        """When :meth:`due` will next have something, for the caller's timer."""
        times = [s.shown_at + self.min_show_s for s in self.screens.values()
                 if s.pending is not None]
        return min(times) if times else None
