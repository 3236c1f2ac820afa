"""The simulated scanner: dedupe over frames, files, the dumb-camera payload, the CLI."""

from __future__ import annotations

import base64
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

from contract.qr_image import FrameError, decode_image
from contract.validation import MAX_PAYLOAD_BYTES, validate
from firmware_sim.frames import ean_image, encode_frame, qr_frame, shelf_frame
from firmware_sim.qr_scanner import FileScan, QrScanner, frame_message, main

DL = "https://id.gs1.org/01/09506000134352"
TOKEN = "vt1.eyJzdWIiOiJjdXN0LTQyIn0.c2lnbmF0dXJl"
REPO = Path(__file__).resolve().parents[2]


@cache
def frame(text: str, seed: int = 0) -> bytes:
    return encode_frame(qr_frame(text, rotate_deg=10, noise=0.05, seed=seed), "jpeg")


@cache
def empty_frame() -> bytes:
    return encode_frame(Image.new("L", (200, 150), 200), "png")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def scans() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def scanner(scans: list[tuple[str, str]], clock: Clock) -> QrScanner:
    return QrScanner(lambda text, sym: scans.append((text, sym)), dedupe_s=2.0, clock=clock)


def play(scanner: QrScanner, clock: Clock, timeline: list[tuple[float, bytes]]) -> list[list[str]]:
    """Feed (time offset, frame) pairs; return what each frame reported."""
    start = clock.now
    out = []
    for at, data in timeline:
        clock.now = start + at
        out.append(scanner.feed(data))
    return out


# -- dedupe -----------------------------------------------------------------------------------


def test_code_held_in_view_is_reported_once(scanner, clock, scans) -> None:
    # 15 frames, one every 0.4 s: six seconds in front of the camera, one scan.
    reports = play(scanner, clock, [(i * 0.4, frame(DL, seed=i % 3)) for i in range(15)])
    assert reports[0] == ["]Q1" + DL] and not any(reports[1:])
    assert scans == [("]Q1" + DL, "QRCODE")]


def test_code_shown_again_after_leaving_for_a_window(scanner, clock, scans) -> None:
    play(scanner, clock, [(0, frame(DL)), (0.5, empty_frame()), (2.4, frame(DL))])
    assert scans == [("]Q1" + DL, "QRCODE")] * 2


def test_brief_occlusion_is_not_a_new_scan(scanner, clock, scans) -> None:
    play(scanner, clock, [(0, frame(DL)), (0.5, empty_frame()), (1.9, frame(DL))])
    assert len(scans) == 1


def test_distinct_codes_are_tracked_independently(scanner, clock, scans) -> None:
    reports = play(scanner, clock, [(0, frame(DL)), (0.5, frame(TOKEN)), (1.0, frame(DL)),
                                    (2.4, frame(TOKEN)), (3.1, frame(DL)), (3.2, frame(TOKEN))])
    # Each code's window runs from its own last sighting: TOKEN 0.5 -> 2.4 -> 3.2 stays
    # silent; DL, last seen at 1.0 s, is out of view for 2.1 s and comes back as a new scan.
    assert reports == [["]Q1" + DL], ["]Q1" + TOKEN], [], [], ["]Q1" + DL], []]


def test_zero_window_reports_every_frame(scans, clock) -> None:
    scanner = QrScanner(lambda text, sym: scans.append((text, sym)), dedupe_s=0, clock=clock)
    play(scanner, clock, [(0, frame(DL)), (0, frame(DL)), (0.1, frame(DL))])
    assert len(scans) == 3


def test_negative_window_refused() -> None:
    with pytest.raises(ValueError):
        QrScanner(lambda text, sym: None, dedupe_s=-1)


def test_failing_callback_leaves_the_code_for_the_next_frame(clock, scans) -> None:
    calls = []

    def flaky(text: str, sym: str) -> None:
        calls.append(text)
        if len(calls) == 1:
            raise ConnectionError("MQTT client not connected")

    scanner = QrScanner(flaky, clock=clock)
    with pytest.raises(ConnectionError):
        scanner.feed(frame(DL))
    clock.now += 0.1
    assert scanner.feed(frame(DL)) == ["]Q1" + DL]
    assert calls == ["]Q1" + DL] * 2


def test_feed_takes_pil_images_and_reports_barcodes(scanner, scans) -> None:
    assert scanner.feed(shelf_frame(ean_image("9506000134352"))) == ["]E09506000134352"]
    assert scans == [("]E09506000134352", "EAN13")]


def test_garbage_frame_raises_frame_error(scanner, scans) -> None:
    with pytest.raises(FrameError):
        scanner.feed(b"\xff\xd8\xff garbage")
    assert scans == []


# -- files and CLI ----------------------------------------------------------------------------


@pytest.fixture
def image_files(tmp_path: Path) -> dict[str, Path]:
    files = {"dl.png": encode_frame(qr_frame(DL), "png"), "token.jpg": frame(TOKEN),
             "blank.png": empty_frame(), "notes.txt": b"not an image"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = {name: tmp_path / name for name in files}
    paths["missing.png"] = tmp_path / "missing.png"
    return paths


def test_scan_files_reports_per_file(scanner, image_files) -> None:
    names = ["dl.png", "token.jpg", "blank.png", "notes.txt", "missing.png"]
    results = list(scanner.scan_files(str(image_files[n]) for n in names))
    assert [r.path for r in results] == [image_files[n] for n in names]
    assert results[0] == FileScan(image_files["dl.png"], ["]Q1" + DL])
    assert results[1].texts == ["]Q1" + TOKEN] and results[2] == FileScan(results[2].path, [])
    assert "not a PNG or JPEG" in results[3].error
    assert results[4].error and not results[4].texts


def test_cli_prints_texts(image_files, capsys) -> None:
    assert main([str(image_files["dl.png"])]) == 0
    assert capsys.readouterr().out == DL + "\n"
    assert main(["--aim", str(image_files["dl.png"])]) == 0
    assert capsys.readouterr().out == "]Q1" + DL + "\n"


def test_cli_several_files_and_errors(image_files, capsys) -> None:
    paths = [str(image_files[n]) for n in ("dl.png", "dl.png", "blank.png", "notes.txt")]
    assert main(paths) == 1
    out = capsys.readouterr()
    # The same file twice is printed twice: the CLI does not dedupe.
    assert out.out == f"{paths[0]}\t{DL}\n" * 2
    assert "no code found" in out.err and "notes.txt: not a PNG or JPEG" in out.err


def test_cli_as_module(image_files) -> None:
    run = subprocess.run([sys.executable, "-m", "firmware_sim.qr_scanner",
                          str(image_files["token.jpg"])],
                         cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    assert (run.returncode, run.stdout) == (0, TOKEN + "\n"), run.stderr


# -- dumb camera payload ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_frame_message_round_trip_to_the_edge_decoder(fmt) -> None:
    img = qr_frame(DL, rotate_deg=12, noise=0.05, size=(640, 480), seed=3)
    msg = frame_message(img, fmt, msg_id="cam-01-000042", ts=1732370000.5)
    assert validate("frame", msg) is msg
    assert (msg["msg_id"], msg["ts"], msg["format"]) == ("cam-01-000042", 1732370000.5, fmt)
    found = decode_image(base64.b64decode(msg["image"], validate=True), fmt=msg["format"])
    assert [d.prefixed for d in found] == ["]Q1" + DL]


def test_frame_message_defaults_and_encoded_bytes() -> None:
    data = frame(TOKEN)
    a, b = frame_message(data, "jpeg"), frame_message(data, "jpeg")
    assert a["msg_id"] != b["msg_id"] and a["ts"] > 0
    assert base64.b64decode(a["image"]) == data


def test_frame_message_over_the_payload_limit_is_refused() -> None:
    too_big = bytes(MAX_PAYLOAD_BYTES["frame"] * 3 // 4)
    with pytest.raises(FrameError, match="payload limit"):
        frame_message(too_big, "png")


# -- synthetic frames -------------------------------------------------------------------------


def test_frames_are_reproducible_from_the_seed() -> None:
    kwargs = {"rotate_deg": 20, "noise": 0.1, "blur": 0.5, "size": (320, 240)}
    a = qr_frame(TOKEN, seed=7, **kwargs)
    assert a.tobytes() == qr_frame(TOKEN, seed=7, **kwargs).tobytes()
    assert a.tobytes() != qr_frame(TOKEN, seed=8, **kwargs).tobytes()
    assert (a.mode, a.size) == ("L", (320, 240))


def test_frame_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        qr_frame(DL, scale=8, size=(100, 100))
    with pytest.raises(ValueError):
        qr_frame(DL, noise=1.5)
    with pytest.raises(ValueError, match="check digit"):
        ean_image("9506000134353")
    with pytest.raises(ValueError):
        encode_frame(qr_frame(DL), "gif")  # type: ignore[arg-type]
