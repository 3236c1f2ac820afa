"""What the MQTT side hands to the pipeline: one received message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Inbound:
    """A device message as received, before any parsing.

    ``mid``/``qos`` are kept so the message can be acknowledged to the broker
    once the transaction that recorded it has committed, and not before.
    """

    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: float
    retained: bool = False
    #: Set by the frame lane: codes pyzbar found in a camera frame...
    frame_texts: list[str] | None = None
    #: ...or why the frame could not be used: (reason, detail).
    frame_error: tuple[str, str] | None = None
