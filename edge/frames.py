"""The frame lane: camera frames decoded with pyzbar beside the main pipeline.

Decoding a frame takes tens of milliseconds, a hundred times a tap. Doing it on
the writer thread would stall every other device, so frames are decoded on a
small pool (pyzbar's C call releases the GIL) and re-enter the main queue with
their decoded texts; they are committed and acknowledged like any message.

The lane is bounded (``frame_queue_max`` frames received and not yet decoded):
when it is full, :meth:`FrameLane.submit` blocks the MQTT network thread, which
stops reading the socket, so further frames (and everything behind them) wait
at the broker, unacknowledged, instead of in the edge's memory. A flood of
valid 2 MiB frames costs the edge at most ``frame_queue_max`` x 2 MiB.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from contract.qr_image import FrameError, decode_image
from contract.validation import MAX_PAYLOAD_BYTES, SchemaError, validate

from .inbound import Inbound

log = logging.getLogger("vitrine.edge.frames")


def decode_frame_message(item: Inbound) -> Inbound:
    """Fill ``frame_texts`` or ``frame_error``; never raises."""
    if len(item.payload) > MAX_PAYLOAD_BYTES["frame"]:
        return item  # the pipeline quarantines it as oversize
    try:
        msg = json.loads(item.payload)
        validate("frame", msg)
        data = base64.b64decode(msg["image"], validate=True)
        found = decode_image(data, fmt=msg["format"])  # must match what it claims
    except (ValueError, UnicodeDecodeError, SchemaError, binascii.Error,
            RecursionError) as exc:
        # ValueError covers JSON errors and FrameError; the pipeline re-checks
        # JSON and schema and reports those precisely, so only flag image errors.
        # RecursionError: json recurses per nesting level; deep nesting is not_json.
        if isinstance(exc, FrameError | binascii.Error):
            item.frame_error = ("bad_frame", str(exc)[:200])
        return item
    item.frame_texts = [d.aim + d.text for d in found]
    return item


class FrameLane:
    def __init__(self, workers: int, deliver: Callable[[Inbound], None], max_pending: int = 8):
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers),
                                        thread_name_prefix="edge-frames")
        self._deliver = deliver
        self.max_pending = max(1, max_pending)
        self._slots = threading.BoundedSemaphore(self.max_pending)
        self._lock = threading.Lock()
        self.pending = 0
        #: Highest number of frames held at once (tests and metrics).
        self.high_water = 0

    def submit(self, item: Inbound) -> None:
        """Queue a frame for decoding; blocks while ``max_pending`` frames are in hand."""
        self._slots.acquire()
        with self._lock:
            self.pending += 1
            self.high_water = max(self.high_water, self.pending)
        self._pool.submit(self._run, item)

    def _run(self, item: Inbound) -> None:
        try:
            try:
                decoded = decode_frame_message(item)
            except Exception:  # deliver must not lose the message silently
                log.exception("frame lane failed on %s", item.topic)
                item.frame_error = ("internal_error", "frame lane failure")
                decoded = item
            self._deliver(decoded)
        finally:
            with self._lock:
                self.pending -= 1
            self._slots.release()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
