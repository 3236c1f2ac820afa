"""Simulated e-paper shelf labels: receive a bitmap, verify it, keep it, say what is shown.

Firmware of an ESL does little, on purpose: the edge renders. On each
``label_bitmap`` command the label

1. decompresses the planes and recomputes their hash (``contract.eslabel``);
   a mismatch or a damaged transfer is refused and the label keeps showing
   what it showed (an e-paper keeps its picture without power);
2. stores the planes (in memory, and on disk when given a directory: a real
   label keeps its image in flash across a battery change);
3. reports on its ``label`` channel the hash it now displays (``ok: true``),
   or the refusal with the hash it still displays (``ok: false``).

The edge records that report per label, so it knows which price is actually
on the shelf. ``report`` is the device session's ``publish_json``; a fleet of
hundreds of labels shares nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract.eslabel import LabelBitmap, LabelBitmapError, decode_planes, encode_planes, to_image

log = logging.getLogger("vitrine.sim.label")


class SimLabel:
    def __init__(self, device_id: str, report: Callable[[str, dict[str, Any]], Any], *,
                 store_dir: str | Path | None = None):
        self.device_id = device_id
        self.report = report
        self.store_dir = Path(store_dir) if store_dir else None
        self.shown: LabelBitmap | None = None
        self.price_cents: int | None = None
        self.updates = 0
        self.refused = 0
        if self.store_dir:
            self.store_dir.mkdir(parents=True, exist_ok=True)

    @property
    def shown_hash(self) -> str | None:
        return self.shown.hash if self.shown else None

    def on_command(self, cmd: Any) -> None:
        if getattr(cmd, "cmd", None) != "label_bitmap":
            return
        try:
            bitmap = decode_planes(cmd.width, cmd.height, cmd.planes, cmd.hash)
        except LabelBitmapError as exc:
            self.refused += 1
            log.warning("%s: bitmap refused: %s", self.device_id, exc)
            self.report("label", {"ok": False, "hash": cmd.hash, "shown_hash": self.shown_hash,
                                  "error": str(exc)[:200]})
            return
        self.shown = bitmap
        self.price_cents = getattr(cmd, "price_cents", None)
        self.updates += 1
        if self.store_dir:
            (self.store_dir / f"{self.device_id}.planes").write_text(encode_planes(bitmap))
        self.report("label", {"ok": True, "hash": bitmap.hash, "shown_hash": bitmap.hash})

    def snapshot(self, path: str | Path) -> None:
        """What the panel shows, as a PNG (demo, screenshots)."""
        if self.shown is not None:
            to_image(self.shown).save(path)
