"""The kit's NFC reader (shelf stations, kiosks) against emulated tags, through nfcpy's stack.

Reader and tag talk over nfcpy's ``udp:`` frontend on 127.0.0.1: the reader
senses, activates and reads a Type 3 Tag exactly as it would over USB; the tag
side is nfcpy's own Type 3 Tag emulation. Nothing is mocked.
"""

from __future__ import annotations

import logging
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ndef
import pytest

from contract.nfc_reader import (
    FrontendUnavailableError,
    NfcReader,
    ReaderThread,
    TagRead,
    open_frontend,
)
from firmware_sim.tag_emulator import (
    NDEF_SYSTEM_CODE,
    PMM,
    TagEmulator,
    free_udp_port,
    ndef_text,
    ndef_uri,
    parse_idm,
    tag_memory,
)

pytestmark = pytest.mark.timeout(30)

GS1_URI = "https://id.gs1.org/01/09506000134352"
UID = "03feffe011223344"
#: Wait for a tap: the reader's idle sense round over UDP takes up to ~1 s.
TAP_TIMEOUT = 5.0
REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunningReader:
    reader: NfcReader
    taps: queue.Queue[TagRead]

    def next_tap(self, timeout: float = TAP_TIMEOUT) -> TagRead:
        try:
            return self.taps.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no tag read within {timeout}s")

    def assert_no_tap(self, wait: float = 0.5) -> None:
        with pytest.raises(queue.Empty):
            extra = self.taps.get(timeout=wait)
            pytest.fail(f"unexpected tag read {extra}")


@contextmanager
def running_reader(path: str, **options: Any) -> Iterator[RunningReader]:
    """Run the production reader loop in a thread; stop and join it afterwards."""
    taps: queue.Queue[TagRead] = queue.Queue()
    stop = threading.Event()
    # only NFC-F: over UDP every technology nobody answers costs a 1 s timeout
    reader = NfcReader(path, taps.put, targets=("212F",), poll_iterations=1, **options)
    thread = threading.Thread(target=reader.run, args=(stop,), name="nfc-reader", daemon=True)
    thread.start()
    try:
        yield RunningReader(reader, taps)
    finally:
        stop.set()
        thread.join(5.0)
        assert not thread.is_alive(), "reader loop did not stop"


@pytest.fixture
def udp_path() -> str:
    return f"udp:127.0.0.1:{free_udp_port()}"


@pytest.fixture
def reader(udp_path: str) -> Iterator[RunningReader]:
    with running_reader(udp_path) as running:
        yield running


@pytest.fixture
def emulator(udp_path: str) -> Iterator[TagEmulator]:
    with TagEmulator(udp_path) as emu:
        yield emu


def uris(message: bytes | None) -> list[str]:
    assert message is not None
    return [record.iri for record in ndef.message_decoder(message)]


# -- reads through the real stack ---------------------------------------------------


def test_reader_gets_uid_and_gs1_uri_from_emulated_tag(
    reader: RunningReader, emulator: TagEmulator
) -> None:
    message = ndef_uri(GS1_URI)

    presentation = emulator.present(message, UID, timeout=TAP_TIMEOUT)

    assert presentation.read_complete
    read = reader.next_tap()
    assert read == TagRead(uid=UID, ndef=message, tag_type="Type3Tag")
    assert uris(read.ndef) == [GS1_URI]
    reader.assert_no_tap()  # held on the reader, presence-checked, but reported once


TEXT = "Oat milk 1L, aisle 4"


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(ndef_text(TEXT), id="text-record"),
        pytest.param(b"", id="empty-ndef"),
        pytest.param(None, id="no-ndef"),
    ],
)
def test_text_record_and_tags_without_ndef(
    reader: RunningReader, emulator: TagEmulator, message: bytes | None
) -> None:
    assert emulator.present(message, UID, timeout=TAP_TIMEOUT).read_complete

    read = reader.next_tap()
    assert (read.uid, read.ndef) == (UID, message)
    if read.ndef:
        [record] = ndef.message_decoder(read.ndef)
        assert (record.text, record.language) == (TEXT, "en")
    reader.assert_no_tap()


def test_successive_taps_of_different_tags_each_read_once(
    reader: RunningReader, emulator: TagEmulator
) -> None:
    tags = [(f"03feffe0112233{i:02x}", ndef_uri(f"{GS1_URI}/21/{i}")) for i in range(4)]

    for uid, message in tags:
        assert emulator.present(message, uid, timeout=TAP_TIMEOUT).read_complete

    reads = [reader.next_tap() for _ in tags]
    assert [(r.uid, r.ndef) for r in reads] == tags
    reader.assert_no_tap()


@pytest.mark.parametrize(("debounce_s", "reads"), [(30.0, 1), (0.0, 2)])
def test_same_tag_again_within_debounce_is_ignored(
    udp_path: str,
    emulator: TagEmulator,
    caplog: pytest.LogCaptureFixture,
    debounce_s: float,
    reads: int,
) -> None:
    caplog.set_level(logging.DEBUG, logger="contract.nfc_reader")
    message = ndef_uri(GS1_URI)
    with running_reader(udp_path, debounce_s=debounce_s) as reader:
        assert emulator.present(message, UID, timeout=TAP_TIMEOUT).read_complete
        assert reader.next_tap().uid == UID
        time.sleep(0.5)  # off the reader long enough for its presence check to fail

        # a debounced tag is only presence-checked, never read, so the tap runs to its timeout
        again = emulator.present(message, UID, timeout=2.5)

        assert again.read_complete == (reads == 2)
        for _ in range(reads - 1):
            assert reader.next_tap().uid == UID
        reader.assert_no_tap()
    assert ("seen again within" in caplog.text) == (reads == 1)


# -- faults -------------------------------------------------------------------------


def test_tag_pulled_away_mid_read_is_not_reported_and_next_tag_is_read(
    reader: RunningReader, emulator: TagEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    long_message = ndef_text("x" * 100)  # 7 data blocks: two read commands after block 0
    caplog.set_level(logging.WARNING, logger="contract.nfc_reader")

    torn = emulator.present(long_message, "03feffe0aaaaaaaa", timeout=TAP_TIMEOUT, max_commands=2)
    assert torn.activated and not torn.read_complete
    assert emulator.present(ndef_uri(GS1_URI), UID, timeout=TAP_TIMEOUT).read_complete

    read = reader.next_tap()
    assert (read.uid, uris(read.ndef)) == (UID, [GS1_URI])
    reader.assert_no_tap()
    assert "03feffe0aaaaaaaa left the field" in caplog.text


class RogueTag:
    """A raw UDP peer: discovery is answered by ``sensf_reply``, every command after
    it with bytes no tag would send.

    Stands in for a broken tag or RF noise, which nfcpy's emulation never produces.
    """

    def __init__(self, port: int, sensf_reply: Callable[[bytes], bytes]) -> None:
        self.sensf_reply = sensf_reply
        self.discoveries = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", port))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rogue-tag", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, addr = self._sock.recvfrom(1024)
            except TimeoutError:
                continue
            brty, _, payload = datagram.partition(b" ")
            frame = bytes.fromhex(payload.decode()) if brty == b"212F" else b""
            if frame.startswith(b"\x06\x00"):  # SENSF_REQ
                self.discoveries += 1
                self._sock.sendto(b"212F " + self.sensf_reply(frame), addr)
            elif frame:
                self._sock.sendto(b"212F deadbeef", addr)  # wrong length, code, IDm

    def wait_for(self, discoveries: int, timeout: float = TAP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.discoveries >= discoveries:
                return
            time.sleep(0.05)
        pytest.fail(f"reader discovered the rogue tag {self.discoveries} times, not {discoveries}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()


def valid_sensf_res(idm: bytes) -> Callable[[bytes], bytes]:
    def reply(sensf_req: bytes) -> bytes:
        res = b"\x01" + idm + PMM + NDEF_SYSTEM_CODE
        return (bytes([len(res) + 1]) + res).hex().encode()

    return reply


def port_of(path: str) -> int:
    return int(path.rsplit(":", 1)[1])


def test_reader_survives_garbage_responses(
    udp_path: str, reader: RunningReader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="contract.nfc_reader")
    rogue = RogueTag(port_of(udp_path), valid_sensf_res(parse_idm("03feffe0bbbbbbbb")))
    try:
        rogue.wait_for(discoveries=2)  # read failed, tag re-found, failed again
    finally:
        rogue.close()

    with TagEmulator(udp_path) as emulator:
        assert emulator.present(ndef_uri(GS1_URI), UID, timeout=TAP_TIMEOUT).read_complete

    assert reader.next_tap().uid == UID
    reader.assert_no_tap()
    assert "03feffe0bbbbbbbb left the field" in caplog.text


@pytest.mark.allow_errors  # the undecodable frame escapes nfcpy; the loop logs it with traceback
def test_reader_loop_survives_undecodable_frame(
    udp_path: str, reader: RunningReader, caplog: pytest.LogCaptureFixture
) -> None:
    rogue = RogueTag(port_of(udp_path), lambda sensf_req: b"not-hex")
    try:
        rogue.wait_for(discoveries=1)
    finally:
        rogue.close()

    with TagEmulator(udp_path) as emulator:
        assert emulator.present(ndef_uri(GS1_URI), UID, timeout=TAP_TIMEOUT).read_complete

    assert reader.next_tap().uid == UID
    loud = [r for r in caplog.records if r.name == "contract.nfc_reader" and r.exc_info]
    assert loud and loud[0].levelno == logging.ERROR, "the unexpected error must be logged loudly"


# -- set-up errors and building blocks ----------------------------------------------


def test_missing_reader_is_a_clear_error() -> None:
    with pytest.raises(FrontendUnavailableError, match="usb:ffff:ffff"):
        open_frontend("usb:ffff:ffff")
    with pytest.raises(FrontendUnavailableError, match="no NFC reader found"):
        NfcReader("tty:S99:pn532", lambda read: None).run(threading.Event())


def test_emulator_refuses_a_port_in_use(udp_path: str) -> None:
    # nfcpy's UDP listen would silently never bind; another emulator holds the port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("0.0.0.0", port_of(udp_path)))
        with pytest.raises(OSError, match="already in use"):
            TagEmulator(udp_path).start()


def test_tag_memory_is_a_valid_type3_ndef_layout() -> None:
    message = ndef_uri(GS1_URI)
    blocks = tag_memory(message)
    assert blocks is not None
    attr = blocks[0]
    assert attr[0] == 0x10  # mapping version 1.0
    assert int.from_bytes(attr[11:14], "big") == len(message)
    assert int.from_bytes(attr[14:16], "big") == sum(attr[0:14])
    assert b"".join(blocks[1:])[: len(message)] == message
    assert tag_memory(None) is None
    with pytest.raises(ValueError, match="8 bytes"):
        parse_idm("0102")
    with pytest.raises(ValueError, match="NFC-DEP"):
        parse_idm("01fe000000000000")


def test_cli_presents_a_uri_tag(udp_path: str, reader: RunningReader) -> None:
    cmd = [
        sys.executable,
        "-m",
        "firmware_sim.tag_emulator",
        "--path",
        udp_path,
        "--uri",
        GS1_URI,
        "--uid",
        UID,
        "--timeout",
        str(TAP_TIMEOUT),
    ]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=20)

    assert result.returncode == 0, result.stderr
    read = reader.next_tap()
    assert (read.uid, uris(read.ndef)) == (UID, [GS1_URI])


# -- the reader on its own thread (shelf stations and the kiosk run it so) ----------------


def test_reader_thread_reads_a_tap_and_stops(udp_path: str, emulator: TagEmulator) -> None:
    taps: queue.Queue[TagRead] = queue.Queue()
    thread = ReaderThread(udp_path, taps.put, targets=("212F",), poll_iterations=1).start()
    try:
        assert emulator.present(ndef_uri(GS1_URI), UID, timeout=TAP_TIMEOUT).read_complete
        assert taps.get(timeout=TAP_TIMEOUT).uid == UID
    finally:
        thread.stop()
    assert not thread.is_alive() and thread.error is None


def test_reader_thread_without_a_reader_records_why() -> None:
    thread = ReaderThread("usb:ffff:ffff", lambda read: None).start()
    thread.stop()
    assert isinstance(thread.error, FrontendUnavailableError) and not thread.is_alive()
