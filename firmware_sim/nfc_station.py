"""An NFC shelf reader station: nfcpy reader loop -> MQTT device client.

This is the firmware a store runs on the small computer behind each shelf
reader (``--path usb`` with a USB reader). The demo and the tests run the very
same code against nfcpy's ``udp:`` simulated frontend, with
:class:`firmware_sim.tag_emulator.TagEmulator` playing the tags.

    python -m firmware_sim.nfc_station --device-id nfc-12 --path usb \\
        --store-id store-001 --host edge.local --port 8883 --cafile ca.crt
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import threading

from contract.nfc_reader import ReaderThread, TagRead

from .device import DeviceClient

log = logging.getLogger("vitrine.nfc_station")


class NfcStation:
    """Reads taps on ``path`` and publishes each one as the device ``client``.

    The reader thread only queues taps: publishing may block under
    back-pressure, and a blocked reader would miss the next tap.
    """

    def __init__(self, path: str, client: DeviceClient, **reader_options: object):
        self.client = client
        self.taps: queue.SimpleQueue[TagRead | None] = queue.SimpleQueue()
        # the kit's reader loop (contract/nfc_reader.py), the one the kiosk runs too
        self.reader_thread = ReaderThread(path, self.taps.put, **reader_options)
        self.reader = self.reader_thread.reader
        self._publisher = threading.Thread(target=self._publish_loop, name="nfc-publish",
                                           daemon=True)
        self.published = 0

    def start(self) -> NfcStation:
        self.client.start()
        self.reader_thread.start()
        self._publisher.start()
        return self

    def _publish_loop(self) -> None:
        while (read := self.taps.get()) is not None:
            self.client.tap(read)
            self.published += 1

    def stop(self) -> None:
        self.reader_thread.stop()
        self.taps.put(None)
        self._publisher.join(5)
        self.client.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware_sim.nfc_station", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device-id", required=True)
    p.add_argument("--path", default="usb", help="nfcpy device path: usb, tty:..., udp:...")
    p.add_argument("--store-id", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--cafile")
    p.add_argument("--password-env", default="VITRINE_DEVICE_PASSWORD",
                   help="environment variable holding the device password")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    password = os.environ.get(args.password_env, "")
    client = DeviceClient(args.device_id, "nfc_reader", password, store_id=args.store_id,
                          host=args.host, port=args.port, cafile=args.cafile)
    station = NfcStation(args.path, client).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        station.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
