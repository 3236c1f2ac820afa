"""A QR/barcode scanner station: camera frames -> pyzbar -> MQTT device client.

The firmware of a shelf or kiosk scanner built from a camera and a small
computer. Frames come from image files (a camera writing snapshots, or a test
set) or from synthetic shelf frames; :class:`firmware_sim.qr_scanner.QrScanner`
decodes them with pyzbar and deduplicates a code held in view; each new code is
published on ``devices/{id}/qr`` with its AIM prefix. With ``--dumb`` the
station is a "dumb camera": it publishes the frames themselves on
``devices/{id}/frame`` and the edge decodes them.

    python -m firmware_sim.qr_station --device-id qr-01 --store-id store-001 \\
        --port 1883 snapshots/*.png
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from contract.qr_image import FrameError

from .device import DeviceClient
from .frames import encode_frame
from .qr_scanner import QrScanner

log = logging.getLogger("vitrine.qr_station")


class QrStation:
    def __init__(self, client: DeviceClient, *, dumb: bool = False, dedupe_s: float = 2.0):
        self.client = client
        self.dumb = dumb
        self.scanner = QrScanner(lambda text, symbology: client.scan(text), dedupe_s=dedupe_s)
        self.unreadable = 0

    def feed(self, frame: Image.Image | bytes) -> list[str]:
        """Handle one camera frame; return the texts published (none in dumb mode)."""
        if self.dumb:
            data = frame if isinstance(frame, bytes) else encode_frame(frame, "png")
            self.client.frame(data, "png")
            return []
        try:
            return self.scanner.feed(frame)
        except FrameError as exc:
            self.unreadable += 1
            log.warning("%s: unreadable frame (%s)", self.client.device_id, exc)
            return []

    def feed_files(self, paths: Iterable[str | os.PathLike[str]]) -> int:
        published = 0
        for path in paths:
            published += len(self.feed(Path(path).read_bytes()))
        return published


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware_sim.qr_station", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="camera frames (PNG/JPEG files)")
    p.add_argument("--device-id", required=True)
    p.add_argument("--store-id", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--cafile")
    p.add_argument("--dumb", action="store_true", help="publish frames, let the edge decode")
    p.add_argument("--password-env", default="VITRINE_DEVICE_PASSWORD")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    kind = "camera" if args.dumb else "qr_scanner"
    client = DeviceClient(args.device_id, kind, os.environ.get(args.password_env, ""),
                          store_id=args.store_id, host=args.host, port=args.port,
                          cafile=args.cafile)
    client.start()
    station = QrStation(client, dumb=args.dumb)
    n = station.feed_files(args.images)
    ok = client.close(flush_timeout=10)
    print(f"published {n} scans, {station.unreadable} unreadable frames")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
