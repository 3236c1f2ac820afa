"""A simulated NFC tag that real nfcpy readers can tap, over nfcpy's ``udp:`` frontend.

Shelf-reader tests must exercise nfcpy's actual tag stack (sense, activation,
Type 3 Tag NDEF mapping, presence check) rather than mock it out, so this module
plays the *tag* side of the conversation: it listens on a ``udp:HOST:PORT``
frontend as an NFC-F (FeliCa) card and answers with nfcpy's own
:class:`nfc.tag.tt3.Type3TagEmulation`, the same approach as the ``emulate``
command of nfcpy's ``examples/tagtool.py``.

Pairing: both sides use the *same* path. The emulator calls ``listen``, which
binds UDP ``0.0.0.0:PORT``; the reader calls ``sense``, which sends from an
ephemeral port to ``HOST:PORT``. Start either side first.

The emulated tag looks like a FeliCa Lite (IC code F0h, system code 12FCh,
read-only NDEF service 000Bh, 4 blocks per read) so nfcpy activates it as
``FelicaLite``, a ``Type3Tag``.

CLI::

    python -m firmware_sim.tag_emulator --path udp:127.0.0.1:54321 \\
        --uri https://id.gs1.org/01/09506000134352
"""

from __future__ import annotations

import argparse
import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType

import ndef
import nfc
import nfc.clf
import nfc.tag.tt3

from contract.nfc_reader import open_frontend

log = logging.getLogger(__name__)

#: PMm of the emulated tag. Byte 1 (F0h) is the FeliCa Lite IC code. Bytes 5/6 set the
#: read/write timeout the *reader* derives (nfcpy ``Type3Tag.read_without_encryption``):
#: BFh gives ~80 ms per one-block read, generous enough that thread scheduling in
#: a loaded test run does not turn into spurious read timeouts.
PMM = bytes.fromhex("00f00000 00bfbf00")
#: NFC Forum Type 3 Tag system code: readers only look for NDEF on this system.
NDEF_SYSTEM_CODE = bytes.fromhex("12fc")
#: Service code of the NDEF read-only service (ServiceCode(0, 0b001011)).
NDEF_READ_SERVICE = 0x000B
#: FeliCa Lite geometry: 13 user blocks after the attribute block, 4 blocks per read.
LITE_DATA_BLOCKS = 13
BLOCKS_PER_READ = 4
#: Receive timeout while serving commands, so stop/deadline are checked promptly
#: even when the reader goes silent (nfcpy's own card loop would block forever).
SERVE_POLL_S = 0.05
#: FeliCa command code of Polling. A reader that polls after it has sent other
#: commands is checking presence, i.e. it has finished reading the tag.
POLLING = 0x00


@dataclass(frozen=True)
class Presentation:
    """What happened during one :meth:`TagEmulator.present` call."""

    activated: bool
    """A reader sent the tag a command beyond discovery and presence checks
    (nfcpy's UDP listen answers those without reporting an activation)."""
    read_complete: bool
    """The reader finished reading and moved on to presence checks."""
    commands: int
    """Commands the tag answered (or refused) after activation."""


def ndef_uri(uri: str) -> bytes:
    """Encode a one-record NDEF message holding ``uri`` (e.g. a GS1 Digital Link)."""
    return b"".join(ndef.message_encoder([ndef.UriRecord(uri)]))


def ndef_text(text: str, language: str = "en") -> bytes:
    """Encode a one-record NDEF message holding a Text record."""
    return b"".join(ndef.message_encoder([ndef.TextRecord(text, language)]))


def free_udp_port() -> int:
    """Return a free UDP port that nfcpy's ``udp:`` driver can parse.

    The driver resolves the port through ``getnameinfo`` without
    ``NI_NUMERICSERV``, so a port listed in /etc/services (57000 is "dircproxy")
    comes back as a name and ``int()`` fails. Such ports are skipped.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if socket.getnameinfo(("127.0.0.1", port), socket.NI_NUMERICHOST)[1].isdigit():
            return port
    raise RuntimeError("no free UDP port with a numeric service name")


def tag_memory(message: bytes | None) -> list[bytes] | None:
    """Lay out ``message`` as Type 3 Tag blocks: attribute block 0, then data blocks.

    ``None`` means a tag without NDEF (no NDEF service at all); ``b""`` is a
    formatted but empty NDEF tag. The memory is FeliCa Lite sized and grows if
    the message does not fit, since this is a simulator, not a product model.
    """
    if message is None:
        return None
    data_blocks = max(LITE_DATA_BLOCKS, -(-len(message) // 16))
    attr = bytearray(16)
    # version 1.0, nbr, nbw (0: read-only), nmaxb, ..., writef 0, rwflag 0, ln
    struct.pack_into(">BBBH", attr, 0, 0x10, BLOCKS_PER_READ, 0, data_blocks)
    attr[11:14] = len(message).to_bytes(3, "big")
    struct.pack_into(">H", attr, 14, sum(attr[0:14]))
    body = message + bytes(data_blocks * 16 - len(message))
    return [bytes(attr)] + [body[i : i + 16] for i in range(0, len(body), 16)]


def parse_idm(uid_hex: str) -> bytes:
    """Validate an 8-byte FeliCa IDm given as hex."""
    idm = bytes.fromhex(uid_hex)
    if len(idm) != 8:
        raise ValueError(f"a Type 3 tag IDm is 8 bytes, got {len(idm)}: {uid_hex!r}")
    if idm[:2] == b"\x01\xfe":
        # readers treat NFCID2 01FE... as an NFC-DEP (peer-to-peer) device, not a tag
        raise ValueError(f"IDm must not start with 01FE (reserved for NFC-DEP): {uid_hex!r}")
    return idm


@dataclass
class _Request:
    memory: list[bytes] | None
    idm: bytes
    timeout: float
    hold_s: float
    max_commands: int | None
    done: Future[Presentation]


class TagEmulator:
    """Present emulated Type 3 tags to readers, one tap at a time.

    A worker thread owns the :class:`nfc.ContactlessFrontend` so that callers
    (tests, the CLI) just say "tap this tag" with :meth:`present`. Use as a
    context manager, or call :meth:`start` and :meth:`stop`.

    ``path`` is normally ``udp:HOST:PORT``. nfcpy drivers that can listen as a
    Type F target (e.g. the RC-S380) should work too, but that is untested.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._requests: queue.Queue[_Request | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clf: nfc.ContactlessFrontend | None = None
        self._busy_until = 0.0  # deadline of the presentation in progress (monotonic)

    def start(self) -> TagEmulator:
        """Open the frontend (errors surface here, not in the thread) and start serving."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        _check_udp_port_free(self.path)
        self._clf = open_frontend(self.path)
        self._thread = threading.Thread(target=self._run, name="tag-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Take any tag out of the field, stop the worker and close the frontend.

        A presentation still waiting for a reader ends when its listen times
        out (see :meth:`_present`), so by default this waits for that deadline.
        """
        self._stop.set()
        self._requests.put(None)
        if timeout is None:
            timeout = max(0.0, self._busy_until - time.monotonic()) + 2.0
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("tag emulator thread did not stop within %.1fs", timeout)
            self._thread = None

    def __enter__(self) -> TagEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def present(
        self,
        ndef_message: bytes | None,
        uid_hex: str,
        timeout: float = 5.0,
        *,
        hold_s: float = 0.2,
        max_commands: int | None = None,
    ) -> Presentation:
        """Hold one tag in the field until a reader has read it, then take it away.

        Blocks until the reader has finished reading (plus ``hold_s`` of
        answering presence checks, like a hand lingering on the reader) or
        ``timeout`` seconds passed. ``max_commands`` makes the tag vanish after
        answering that many commands, i.e. pulled away mid-read.
        """
        return self.present_async(
            ndef_message, uid_hex, timeout, hold_s=hold_s, max_commands=max_commands
        ).result(timeout + 10.0)

    def present_async(
        self,
        ndef_message: bytes | None,
        uid_hex: str,
        timeout: float = 5.0,
        *,
        hold_s: float = 0.2,
        max_commands: int | None = None,
    ) -> Future[Presentation]:
        """Queue a presentation (see :meth:`present`) and return its future."""
        if self._thread is None:
            raise RuntimeError("emulator not started")
        request = _Request(
            tag_memory(ndef_message), parse_idm(uid_hex), timeout, hold_s, max_commands, Future()
        )
        self._requests.put(request)
        return request.done

    # -- worker thread -------------------------------------------------------------

    def _run(self) -> None:
        assert self._clf is not None
        try:
            while not self._stop.is_set():
                request = self._requests.get()
                if request is None:
                    break
                if not request.done.set_running_or_notify_cancel():
                    continue
                try:
                    request.done.set_result(self._present(request))
                except Exception as exc:  # handed to the caller of present(), who re-raises
                    request.done.set_exception(exc)
        finally:
            self._clf.close()
            self._fail_pending()

    def _fail_pending(self) -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if request is not None and request.done.set_running_or_notify_cancel():
                request.done.set_exception(RuntimeError("tag emulator stopped"))

    def _present(self, request: _Request) -> Presentation:
        assert self._clf is not None
        deadline = self._busy_until = time.monotonic() + request.timeout

        def expired() -> bool:
            return self._stop.is_set() or time.monotonic() >= deadline

        activated = read_complete = False
        commands = 0
        target_sensf_res = b"\x01" + request.idm + PMM + NDEF_SYSTEM_CODE

        def on_startup(target: nfc.clf.LocalTarget) -> nfc.clf.LocalTarget:
            target.brty = "212F"
            target.sensf_res = bytearray(target_sensf_res)
            return target

        def on_connect(tag: nfc.tag.tt3.Type3TagEmulation) -> bool:
            if request.memory is not None:
                tag.add_service(NDEF_READ_SERVICE, _block_reader(request.memory), None)
            # False: connect() returns the emulation and _serve runs the command loop.
            # nfcpy's own loop waits for commands without timeout, so a reader that
            # vanishes without switching its field off would hang it, and it cannot
            # model a tag pulled away mid-read.
            return False

        # A reader switching its field off (RFOFF) ends a session; the tag is still
        # in the field, so keep listening until the read completed or time is up.
        while not read_complete and not expired():
            # One listen for all the remaining time, not short slices: the UDP driver
            # only accepts commands after a SENSF_REQ seen in the *same* listen call, so
            # a discovery answered just before a slice ended would strand the reader
            # (activated, but its commands ignored). Hence stop() may have to wait for
            # the listen to time out.
            card = {
                "on-startup": on_startup,
                "on-connect": on_connect,
                "timeout": max(0.01, deadline - time.monotonic()),
            }
            tag = self._clf.connect(card=card, terminate=expired)
            if tag is False:  # nfcpy logged and swallowed an IOError: the frontend is gone
                raise OSError(f"contactless frontend {self.path!r} failed")
            if not isinstance(tag, nfc.tag.tt3.Type3TagEmulation):
                continue
            activated = True
            log.debug("tag %s activated by a reader", request.idm.hex())
            served, read_complete = self._serve(tag, request, commands, expired)
            commands += served
            if request.max_commands is not None and commands >= request.max_commands:
                break
        return Presentation(activated, read_complete, commands)

    def _serve(
        self,
        tag: nfc.tag.tt3.Type3TagEmulation,
        request: _Request,
        already: int,
        expired: Callable[[], bool],
    ) -> tuple[int, bool]:
        """Answer reader commands until the tap ends; return (commands, read_complete)."""
        served = 0
        read_complete = reading = False
        leave_at: float | None = None
        cmd: bytearray | None = tag.cmd
        while True:
            if cmd is not None:
                if request.max_commands is not None and already + served >= request.max_commands:
                    log.debug("tag %s pulled away mid-read", request.idm.hex())
                    return served, read_complete
                is_polling = len(cmd) > 1 and cmd[1] == POLLING
                if is_polling and reading and not read_complete:
                    read_complete = True
                    leave_at = time.monotonic() + request.hold_s
                reading = reading or not is_polling
                served += 1
                rsp = tag.process_command(cmd)
            else:
                rsp = None
            if expired() or (leave_at is not None and time.monotonic() >= leave_at):
                return served, read_complete  # tag leaves the field: stop answering
            try:
                cmd = tag.send_response(rsp, SERVE_POLL_S)
            except nfc.clf.TimeoutError:
                cmd = None
            except nfc.clf.BrokenLinkError:
                log.debug("reader switched its field off")
                return served, read_complete
            except nfc.clf.CommunicationError as exc:
                log.debug("ignoring unreadable command: %s", exc)
                cmd = None


def _block_reader(memory: list[bytes]) -> Callable[[int, bool, bool], bytes | None]:
    def read_block(block_number: int, rb: bool, re: bool) -> bytes | None:
        # None makes Type3TagEmulation answer with an error status, as a real tag would
        return memory[block_number] if block_number < len(memory) else None

    return read_block


def _check_udp_port_free(path: str) -> None:
    """Fail fast if another emulator holds the port.

    nfcpy's UDP ``listen`` silently returns nothing forever when the bind fails
    with EADDRINUSE, which would make every presentation time out mysteriously.
    """
    parts = path.split(":")
    if parts[0] != "udp":
        return
    port = int(parts[2]) if len(parts) > 2 and parts[2] else 54321
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            raise OSError(f"UDP port {port} for {path!r} is already in use: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Without --uri/--text/--empty the tag holds no NDEF at all.",
    )
    parser.add_argument("--path", default="udp:127.0.0.1:54321", help="nfcpy frontend path")
    content = parser.add_mutually_exclusive_group()
    content.add_argument("--uri", help="present a URI record (e.g. a GS1 Digital Link)")
    content.add_argument("--text", help="present a Text record")
    content.add_argument("--empty", action="store_true", help="present an empty NDEF tag")
    parser.add_argument("--uid", default="03feffe011223344", help="8-byte IDm in hex")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per tap")
    parser.add_argument("--taps", type=int, default=1, help="number of taps, 0 = forever")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)

    message: bytes | None = None
    if args.uri:
        message = ndef_uri(args.uri)
    elif args.text:
        message = ndef_text(args.text)
    elif args.empty:
        message = b""
    emulator = TagEmulator(args.path).start()
    try:
        tap = 0
        while args.taps == 0 or tap < args.taps:
            tap += 1
            result = emulator.present(message, args.uid, args.timeout)
            log.info("tap %d: %s", tap, result)
            if args.taps and not result.read_complete:
                return 1
            if args.taps == 0:
                time.sleep(1.0)  # away from the reader long enough to count as a new tap
    except KeyboardInterrupt:
        return 130
    finally:
        emulator.stop(timeout=1.0)  # the daemon worker dies with the process anyway
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
