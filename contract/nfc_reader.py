"""The NFC reader every Vitrine device with a reader runs: an nfcpy loop reporting each tap.

Shelf reader stations (``firmware_sim/nfc_station.py``) and the kiosk's own
card reader (``kiosk/card_reader.py``) run this same code, which is why it
lives in the kit and not in either part. The same :class:`NfcReader` drives a
USB reader in production (path ``"usb"``, ``"usb:054c:06c3"`` for a Sony
RC-S380, ``"tty:USB0:pn532"`` ...) and nfcpy's simulated ``udp:HOST:PORT``
frontend in tests, where ``firmware_sim.tag_emulator`` plays the tag. Nothing
here knows which one it talks to: discovery, activation, NDEF reading and
presence checks all go through nfcpy's tag stack, so the simulator exercises
the production code path.

What happens to a tap (publishing uid + NDEF on ``devices/{id}/nfc``) is the
``on_tap`` callback's business, not the reader's; what a read is and means
(``TagRead``, ``tag_says``) lives in ``contract/nfc_tags.py``, which needs no
nfcpy (a kiosk imports it whether or not it has a reader).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Sequence

import nfc
import nfc.clf
import nfc.tag

from .nfc_tags import TagMeaning, TagRead, tag_says

__all__ = ["FrontendUnavailableError", "NfcReader", "ReaderThread", "TagMeaning", "TagRead",
           "open_frontend", "tag_says"]

log = logging.getLogger(__name__)

#: nfcpy's default discovery set: NFC-A (Type 1/2/4A), NFC-B (Type 4B), NFC-F (Type 3).
DEFAULT_TARGETS: tuple[str, ...] = ("106A", "106B", "212F")
#: Pause after the frontend failed (e.g. USB reader unplugged) before trying again.
FAULT_BACKOFF_S = 1.0

#: Errors a tap can legitimately end in: the tag left the field, RF noise, a
#: reader hiccup. They cost one read, not the reader loop.
READ_ERRORS: tuple[type[BaseException], ...] = (
    nfc.tag.TagCommandError,
    nfc.clf.CommunicationError,
    OSError,
)


class FrontendUnavailableError(OSError):
    """No contactless frontend (reader, or simulated ``udp:`` device) could be opened."""


def open_frontend(path: str) -> nfc.ContactlessFrontend:
    """Open the frontend at ``path`` or raise :class:`FrontendUnavailableError` saying why.

    nfcpy's ``open`` returns False for "nothing there" and raises for other
    problems (no libusb, permission denied, busy device); both mean the shelf
    reader cannot work, so both become one clear error.
    """
    clf = nfc.ContactlessFrontend()
    try:
        found = clf.open(path)
    except ValueError as exc:
        # nfcpy's udp driver turns ports named in /etc/services into names, then int() fails
        raise FrontendUnavailableError(
            errno.EINVAL, f"cannot open NFC frontend {path!r}: {exc} (try another port)"
        ) from exc
    except OSError as exc:
        raise FrontendUnavailableError(
            exc.errno or errno.ENODEV, f"cannot open NFC frontend {path!r}: {exc}"
        ) from exc
    if not found:
        raise FrontendUnavailableError(errno.ENODEV, f"no NFC reader found at {path!r}")
    return clf


class NfcReader:
    """Poll for tags and call ``on_tap`` once per presentation.

    A tag held on the reader is reported once: after reading, nfcpy keeps
    checking the tag's presence and only then looks for the next one. A tag
    that flickers at the edge of the field (presence check fails, tag is found
    again) would look like a new tap, so the same UID seen again within
    ``debounce_s`` of its last sighting is ignored.

    ``targets`` is the nfcpy bitrate/technology list to poll. Keep the default
    for USB readers; with the ``udp:`` simulator every technology nobody answers
    costs a one-second receive timeout, so simulations poll ``("212F",)`` only.
    ``poll_iterations`` sense rounds, ``poll_interval`` seconds apart, run
    between checks of the stop event.

    ``on_tap`` runs on the reader thread while the tag is still in the field,
    so it should hand the read off (e.g. queue an MQTT publish) rather than block.
    """

    def __init__(
        self,
        path: str,
        on_tap: Callable[[TagRead], None],
        *,
        debounce_s: float = 1.0,
        targets: Sequence[str] = DEFAULT_TARGETS,
        poll_iterations: int = 2,
        poll_interval: float = 0.25,
    ) -> None:
        self.path = path
        self.on_tap = on_tap
        self.debounce_s = debounce_s
        self.targets = tuple(targets)
        self.poll_iterations = poll_iterations
        self.poll_interval = poll_interval
        self._last_uid: str | None = None
        self._last_seen = 0.0

    def run(self, stop: threading.Event) -> None:
        """Read taps until ``stop`` is set; then close the frontend.

        Opening the frontend is the only failure that escapes (there is no
        point in a reader loop without a reader). Everything after that is
        logged and the loop carries on: a shelf reader must not die because of
        one bad tag.
        """
        clf = open_frontend(self.path)
        log.info("NFC reader on %s (%s)", self.path, clf)
        rdwr = {
            "targets": self.targets,
            "on-connect": self._on_connect,
            "on-release": self._on_release,
            "iterations": self.poll_iterations,
            "interval": self.poll_interval,
            "beep-on-connect": False,
        }
        healthy = True
        try:
            while not stop.is_set():
                if not healthy:
                    # e.g. a USB reader unplugged: pause, then try to get it back
                    if stop.wait(FAULT_BACKOFF_S):
                        break
                    healthy = self._reopen(clf)
                    continue
                try:
                    result = clf.connect(rdwr=rdwr, terminate=stop.is_set)
                except READ_ERRORS as exc:
                    log.warning("NFC frontend %s failed: %s; retrying", self.path, exc)
                    healthy = False
                    continue
                except Exception:
                    # not an RF fault: a bug or a misbehaving driver; make it loud, keep reading
                    log.exception("unexpected error in NFC reader loop on %s", self.path)
                    stop.wait(FAULT_BACKOFF_S)
                    continue
                if result is False:
                    # nfcpy already logged the IOError / unsupported target it swallowed
                    log.warning("NFC frontend %s failed; retrying", self.path)
                    healthy = False
        finally:
            clf.close()
            log.info("NFC reader on %s stopped", self.path)

    def _reopen(self, clf: nfc.ContactlessFrontend) -> bool:
        """Re-open the device after a failure, e.g. a USB reader that was replugged."""
        try:
            if clf.open(self.path):
                log.info("NFC reader %s is back", self.path)
                return True
        except (OSError, ValueError) as exc:
            log.warning("NFC reader %s still unavailable: %s", self.path, exc)
        return False

    def _on_connect(self, tag: nfc.tag.Tag) -> bool:
        """nfcpy callback on activation. Returning True makes nfcpy wait until the tag leaves."""
        uid = tag.identifier.hex()
        if uid == self._last_uid and time.monotonic() - self._last_seen < self.debounce_s:
            log.debug("tag %s seen again within %.1fs, ignored", uid, self.debounce_s)
            self._last_seen = time.monotonic()
            return True
        try:
            read = self._read(tag, uid)
        except READ_ERRORS as exc:
            log.warning("reading tag %s failed: %s", uid, exc)
            return True
        if read is None:
            return True
        self._last_uid, self._last_seen = uid, time.monotonic()
        try:
            self.on_tap(read)
        except Exception:
            log.exception("on_tap callback failed for tag %s", uid)
        return True

    def _on_release(self, tag: nfc.tag.Tag) -> bool:
        if tag.identifier.hex() == self._last_uid:
            self._last_seen = time.monotonic()  # debounce counts from when the tag left
        return True

    @staticmethod
    def _read(tag: nfc.tag.Tag, uid: str) -> TagRead | None:
        """Read the NDEF message, or None if the tag left before we got it.

        nfcpy reports a failed NDEF read as "no NDEF" (``tag.ndef is None``), so
        a None is only believed if the tag is still there afterwards, and after
        a second attempt, since one glitch should not turn a tagged product
        into an untagged one.
        """
        octets: bytes | None = None
        for _ in range(2):
            ndef = tag.ndef
            if ndef is not None:
                octets = ndef.octets
                break
        if octets is None and not tag.is_present:
            log.warning("tag %s left the field before its NDEF could be read", uid)
            return None
        return TagRead(uid=uid, ndef=octets, tag_type=tag.type)


class ReaderThread:
    """An :class:`NfcReader` on its own daemon thread, with the stop event it watches.

    ``on_tap`` runs on that thread: hand the read over (a queue, Kivy's
    ``Clock.schedule_once``) rather than publish or draw from it.
    """

    def __init__(self, path: str, on_tap: Callable[[TagRead], None], *,
                 name: str = "nfc-reader", **reader_options: object) -> None:
        self.reader = NfcReader(path, on_tap, **reader_options)  # type: ignore[arg-type]
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.reader.run(self._stop)
        except FrontendUnavailableError as exc:  # no reader: say so, the device runs on
            self.error = exc
            log.error("%s", exc)

    def start(self) -> ReaderThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()
