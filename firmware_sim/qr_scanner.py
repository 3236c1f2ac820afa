"""Decoding side of the simulated QR scanner firmware, plus the "dumb camera" payload.

A scanner at a shelf or kiosk looks at a stream of frames and must turn them
into *scans*: a loyalty QR held up to the kiosk for three seconds is one scan,
not ninety. :class:`QrScanner` does that. Publishing is not done here: the
device client passes the callback's text to MQTT (``devices/{id}/qr``). A
camera that cannot decode ships frames instead; :func:`frame_message` builds
that ``devices/{id}/frame`` payload for the edge to decode with the very same
:func:`contract.qr_image.decode_image`.

Run ``python -m firmware_sim.qr_scanner IMAGE...`` to decode image files.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from contract.qr_image import FrameError, decode_image, decode_pil
from contract.validation import MAX_PAYLOAD_BYTES, validate
from firmware_sim.frames import FrameFormat, encode_frame

#: Called with (text with its AIM prefix, zbar symbology name) for each new scan.
OnScan = Callable[[str, str], None]

#: Largest image file :meth:`QrScanner.scan_files` reads; a frame that big is
#: far beyond anything decode_image accepts anyway.
MAX_FILE_BYTES = 64 * 1024 * 1024

#: Room left for the JSON around the base64 image within the frame payload limit.
_ENVELOPE_BYTES = 256


@dataclass(frozen=True, slots=True)
class FileScan:
    """What :meth:`QrScanner.scan_files` found in one file."""

    path: Path
    #: AIM-prefixed texts newly reported for this file.
    texts: list[str]
    #: Why the file could not be decoded, if it could not.
    error: str | None = None


class QrScanner:
    """Turns frames into scans, reporting a code held in view only once.

    Dedupe works like the "timeout between decodes, same symbol" of commercial
    presentation scanners: a code is reported when it first appears, then stays
    silent as long as it keeps being seen at least every ``dedupe_s`` seconds;
    once it has been out of view for ``dedupe_s`` it is reported again on its
    next appearance. ``dedupe_s=0`` reports every code in every frame. Distinct
    codes are tracked independently. Not thread-safe: one scanner per camera.
    """

    def __init__(self, on_scan: OnScan, *, dedupe_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if dedupe_s < 0:
            raise ValueError("dedupe_s must be >= 0")
        self._on_scan = on_scan
        self._dedupe_s = dedupe_s
        self._clock = clock
        self._last_seen: dict[tuple[str, str], float] = {}

    def feed(self, frame: bytes | Image.Image) -> list[str]:
        """Decode one frame; report and return the AIM-prefixed texts of new codes.

        Raises :class:`~contract.qr_image.FrameError` for an undecodable frame.
        If ``on_scan`` raises, the exception propagates and that code stays
        unreported, so the next frame showing it retries instead of losing it.
        """
        codes = decode_pil(frame) if isinstance(frame, Image.Image) else decode_image(frame)
        now = self._clock()
        # Forget codes out of view for a whole window; this also bounds the memory.
        self._last_seen = {k: t for k, t in self._last_seen.items() if now - t < self._dedupe_s}
        reported: list[str] = []
        for code in codes:
            key = (code.symbology, code.text)
            if key not in self._last_seen:
                self._on_scan(code.prefixed, code.symbology)
                reported.append(code.prefixed)
            self._last_seen[key] = now
        return reported

    def scan_files(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[FileScan]:
        """Feed image files as successive frames; a bad file is reported, not fatal."""
        for path in map(Path, paths):
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise FrameError(f"file larger than {MAX_FILE_BYTES} bytes")
                texts = self.feed(path.read_bytes())
            except (OSError, FrameError) as exc:
                yield FileScan(path, [], str(exc))
                continue
            yield FileScan(path, texts)


def frame_message(img: Image.Image | bytes, fmt: FrameFormat = "png", *,
                  msg_id: str | None = None, ts: float | None = None) -> dict[str, Any]:
    """The ``devices/{id}/frame`` payload of a dumb camera, validated against frame.json.

    ``img`` is a Pillow image (encoded here) or bytes the camera already encoded
    as ``fmt``. Raises :class:`~contract.qr_image.FrameError` when the frame
    would exceed the broker-side payload limit, where the edge would only
    quarantine it: better to lower the resolution or quality on the camera.
    """
    data = encode_frame(img, fmt) if isinstance(img, Image.Image) else bytes(img)
    b64 = base64.b64encode(data).decode("ascii")
    limit = MAX_PAYLOAD_BYTES["frame"]
    if len(b64) + _ENVELOPE_BYTES > limit:
        raise FrameError(f"{fmt} frame of {len(data)} bytes exceeds the {limit}-byte payload limit")
    message = {
        "msg_id": msg_id or uuid.uuid4().hex,
        "ts": time.time() if ts is None else ts,
        "format": fmt,
        "image": b64,
    }
    return validate("frame", message)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the codes in each image; exit 1 if any file could not be decoded."""
    parser = argparse.ArgumentParser(prog="python -m firmware_sim.qr_scanner",
                                     description="Decode QR codes and barcodes in PNG/JPEG files.")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--aim", action="store_true",
                        help="print the AIM symbology identifier before each text (e.g. ]Q1)")
    args = parser.parse_args(argv)
    scanner = QrScanner(lambda _text, _symbology: None, dedupe_s=0)
    many = len(args.images) > 1
    failed = False
    for result in scanner.scan_files(args.images):
        if result.error:
            failed = True
            print(f"{result.path}: {result.error}", file=sys.stderr)
        elif not result.texts:
            print(f"{result.path}: no code found", file=sys.stderr)
        for text in result.texts:
            shown = text if args.aim else text[3:]  # every AIM identifier is 3 chars
            print(f"{result.path}\t{shown}" if many else shown)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
