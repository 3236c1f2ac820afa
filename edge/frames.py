"""The frame lane: camera frames decoded with pyzbar beside the main pipeline.

Decoding a frame takes tens of milliseconds, a hundred times a tap. Doing it on
the writer thread would stall every other device, so frames are decoded on a
small pool of threads (pyzbar's C call releases the GIL) and re-enter the main
queue with their decoded texts; they are committed and acknowledged like any
message.

The lane is bounded (``frame_queue_max`` frames received and not yet decoded):
when it is full, :meth:`FrameLane.submit` blocks the MQTT network thread, which
stops reading the socket, so further frames (and everything behind them) wait
at the broker, unacknowledged, instead of in the edge's memory. A flood of
valid 2 MiB frames costs the edge at most ``frame_queue_max`` x 2 MiB.

The lane is fair per camera: each camera has its own queue inside the lane, and
the decoders take one frame from each camera with frames waiting in turn
(round robin), so a camera that keeps the lane busy, even under its rate limit,
delays another camera's frame by about one decode once that frame is in the
lane, not by everything it queued before it (first in, first out made that
``frame_queue_max`` decodes). No camera may hold the whole lane: one slot is
always left for the others, so the network thread reaches another camera's
frame without waiting for a decode when it is the next message. What the lane
cannot reorder is the broker's queue: frames behind a backlog at the broker
arrive after it (broker_config/README.md, "frame lane").
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections import deque
from collections.abc import Callable

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
    """Per-camera queues, decoded round robin by ``workers`` threads, bounded in total.

    ``max_pending``: frames in hand (waiting or being decoded) at most, all cameras
    together; one camera holds at most ``max_pending - 1`` of them (all of them when
    the lane has a single slot).
    """

    def __init__(self, workers: int, deliver: Callable[[Inbound], None], max_pending: int = 8):
        self._deliver = deliver
        self.max_pending = max(1, max_pending)
        self.per_device_max = max(1, self.max_pending - 1)
        self._cond = threading.Condition()
        #: device id -> its frames waiting for a decoder, oldest first.
        self._waiting: dict[str, deque[Inbound]] = {}
        #: Devices with frames waiting, in the order the decoders serve them.
        self._turns: deque[str] = deque()
        #: device id -> its frames in hand (waiting or being decoded).
        self._held: dict[str, int] = {}
        self._closed = False
        self.pending = 0
        #: Highest number of frames held at once (tests and metrics).
        self.high_water = 0
        #: Device ids in the order their frames were handed on, decoded (tests).
        self.decoded: deque[str] = deque(maxlen=1000)
        self._threads = [threading.Thread(target=self._work, name=f"edge-frames-{i}",
                                          daemon=True) for i in range(max(1, workers))]
        for t in self._threads:
            t.start()

    def submit(self, item: Inbound, device_id: str = "") -> None:
        """Queue a frame for decoding; blocks while the lane, or this camera's share, is full."""
        with self._cond:
            while not self._closed and (self.pending >= self.max_pending or
                                        self._held.get(device_id, 0) >= self.per_device_max):
                self._cond.wait()
            self.pending += 1
            self.high_water = max(self.high_water, self.pending)
            self._held[device_id] = self._held.get(device_id, 0) + 1
            q = self._waiting.get(device_id)
            if q is None:
                q = self._waiting[device_id] = deque()
                self._turns.append(device_id)
            q.append(item)
            self._cond.notify_all()

    def _next(self) -> tuple[str, Inbound] | None:
        """The next frame in round-robin order (None: closed and nothing left)."""
        with self._cond:
            while not self._turns:
                if self._closed:
                    return None
                self._cond.wait()
            device_id = self._turns.popleft()
            q = self._waiting[device_id]
            item = q.popleft()
            if q:
                self._turns.append(device_id)  # its next frame after the other cameras'
            else:
                del self._waiting[device_id]
            return device_id, item

    def _work(self) -> None:
        while (job := self._next()) is not None:
            device_id, item = job
            try:
                try:
                    decoded = decode_frame_message(item)
                except Exception:  # deliver must not lose the message silently
                    log.exception("frame lane failed on %s", item.topic)
                    item.frame_error = ("internal_error", "frame lane failure")
                    decoded = item
                self.decoded.append(device_id)
                self._deliver(decoded)
            finally:
                with self._cond:
                    self.pending -= 1
                    left = self._held[device_id] - 1
                    if left:
                        self._held[device_id] = left
                    else:
                        del self._held[device_id]
                    self._cond.notify_all()

    def shutdown(self) -> None:
        """Decode what is in hand, then stop the decoders."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()
