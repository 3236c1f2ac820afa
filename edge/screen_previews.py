"""The latest preview of each signage screen: what the panel shows as "on screen now".

A screen publishes a small JPEG of its current frame on ``devices/{id}/preview``
(``preview.json``; ``signage/preview.py``: at most one every few seconds, only when
the frame changed, never buffered while offline). The pipeline hands each valid one
to :func:`record_preview` in the batch's transaction; it replaces the screen's row
in ``screen_previews``, so storage is bounded by the number of screens (one row of
at most 48 KB each) and nothing of it goes to ``events``, the outbox or central.

The thumbnail is checked before it is kept, without decoding its pixels: base64,
a JPEG by its header, the size it claims, at most 480 x 480, and the shape of the
frame it stands for. A preview older than the one kept (a resend after a
reconnect) does not replace it.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
from io import BytesIO
from typing import Any

from PIL import Image, UnidentifiedImageError

MAX_SIDE = 480


class PreviewError(ValueError):
    """A preview that cannot be what it says it is (quarantined as ``bad_preview``)."""


def check_preview(msg: dict[str, Any]) -> bytes:
    """The JPEG bytes of a schema-valid preview message, or :class:`PreviewError`."""
    try:
        data = base64.b64decode(msg["image"], validate=True)
    except (binascii.Error, ValueError):
        raise PreviewError("image is not base64") from None
    try:
        with Image.open(BytesIO(data)) as im:
            fmt, size = im.format, im.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PreviewError(f"not a JPEG image: {exc}"[:200]) from None
    if fmt != "JPEG":
        raise PreviewError(f"a {fmt} image, not JPEG")
    if size != (msg["width"], msg["height"]):
        raise PreviewError(f"image is {size[0]}x{size[1]}, message says "
                           f"{msg['width']}x{msg['height']}")
    if max(size) > MAX_SIDE:
        raise PreviewError(f"larger than {MAX_SIDE}x{MAX_SIDE}")
    # The thumbnail keeps the frame's shape (within a pixel of rounding per side).
    fw, fh = msg["frame_width"], msg["frame_height"]
    if abs(size[0] * fh - size[1] * fw) > max(fw, fh):
        raise PreviewError(f"{size[0]}x{size[1]} is not the shape of a {fw}x{fh} frame")
    return data


def record_preview(conn: sqlite3.Connection, device_id: str, msg: dict[str, Any],
                   jpeg: bytes, received_at: float, device_ts: float | None) -> bool:
    """Keep ``jpeg`` as the screen's preview unless a newer one is kept; True if kept."""
    cur = conn.execute(
        "INSERT INTO screen_previews (device_id, received_at, device_ts, item_id, kind, "
        "trigger, width, height, frame_width, frame_height, jpeg) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
        "received_at = excluded.received_at, device_ts = excluded.device_ts, "
        "item_id = excluded.item_id, kind = excluded.kind, trigger = excluded.trigger, "
        "width = excluded.width, height = excluded.height, frame_width = "
        "excluded.frame_width, frame_height = excluded.frame_height, jpeg = excluded.jpeg "
        "WHERE excluded.device_ts IS NULL OR screen_previews.device_ts IS NULL "
        "OR excluded.device_ts >= screen_previews.device_ts",
        (device_id, received_at, device_ts, msg["item_id"], msg["kind"], msg["trigger"],
         msg["width"], msg["height"], msg["frame_width"], msg["frame_height"], jpeg))
    return cur.rowcount > 0
