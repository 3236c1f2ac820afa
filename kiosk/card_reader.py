"""The kiosk's own NFC reader: the kit's reader loop (``contract/nfc_reader.py``) on a thread.

The same code the shelf stations run reads loyalty cards and shelf tags held
to the kiosk (``--nfc usb`` in a store, ``--nfc udp:HOST:PORT`` against nfcpy's
simulated frontend in tests). Each tap is handed to ``on_read(uid, ndef_b64)``
on Kivy's main thread, where the flow publishes it to the edge as this
kiosk's ``nfc`` read: the edge verifies the card and answers with
``customer_identified``; a product tag also opens that product here.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from contract.nfc_reader import ReaderThread, TagRead

log = logging.getLogger("vitrine.kiosk.nfc")

#: nfcpy options per frontend: over ``udp:`` every technology nobody answers costs a
#: one-second timeout, so the simulator polls NFC-F (what the tag emulator plays) only.
UDP_OPTIONS: dict[str, Any] = {"targets": ("212F",), "poll_iterations": 1}


def to_main_thread(fn: Callable[[str, str | None], None]) -> Callable[[str, str | None], None]:
    """``fn`` run on Kivy's main thread (the flow runs on one thread only)."""
    from kivy.clock import Clock

    def call(uid: str, ndef_b64: str | None) -> None:
        Clock.schedule_once(lambda _dt: fn(uid, ndef_b64), 0)

    return call


class CardReader:
    """Reads taps on ``path`` and hands each to ``on_read`` (uid hex, NDEF as base64)."""

    def __init__(self, path: str, on_read: Callable[[str, str | None], None],
                 **reader_options: Any) -> None:
        options = {**(UDP_OPTIONS if path.startswith("udp:") else {}), **reader_options}
        self.path = path
        self.on_read = on_read
        self.taps = 0
        self.thread = ReaderThread(path, self._tap, name="kiosk-nfc", **options)

    def _tap(self, read: TagRead) -> None:
        self.taps += 1
        ndef = base64.b64encode(read.ndef).decode() if read.ndef is not None else None
        log.info("card reader %s: tag %s", self.path, read.uid)
        self.on_read(read.uid, ndef)

    def start(self) -> CardReader:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.thread.stop()
