"""Screen profiles: the canvas a screen renders to.

Two orientations of a full-HD panel cover what stores hang: landscape above
shelves and at the entrance, portrait on columns and end caps. A profile is
chosen per screen (playlist file, ``--profile``), never guessed from the
window, so the headless frame and the window show the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    width: int
    height: int

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


LANDSCAPE = Profile("landscape", 1920, 1080)
PORTRAIT = Profile("portrait", 1080, 1920)
PROFILES = {p.name: p for p in (LANDSCAPE, PORTRAIT)}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown screen profile {name!r} (one of {sorted(PROFILES)})") from None
