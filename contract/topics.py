"""MQTT topic contract shared by every Vitrine part.

All topics live under ``vitrine/v1/{store_id}/``. The version segment lets a
future protocol coexist on the same broker during a rolling upgrade. Builders
and the parser live together so that a topic can never be written one way and
read another. ``docs/protocol.md`` documents every family listed in
:data:`DEVICE_CHANNELS` and :data:`EDGE_CHANNELS`; a test fails when one is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .kinds import COMMAND_FAMILY

PREFIX = "vitrine/v1"

#: What a device publishes under ``devices/{device_id}/``. ``label``: what a shelf
#: label displays; ``play``: proof of play of a signage screen; ``preview``: a small
#: JPEG of what a screen shows now (the panel's live preview).
DEVICE_CHANNELS = ("state", "nfc", "qr", "frame", "telemetry", "label", "play", "preview")

#: The channels each device kind publishes on, and no other: the broker's ACL lets
#: a device write exactly these under ``devices/{its id}/`` and the edge refuses the
#: rest (``channel_not_allowed``). A kiosk carries a reader and a scanner; a camera
#: that decodes sends ``qr``, one that cannot sends ``frame``. Only cameras send frames;
#: a screen reports proof of play and a preview, a shelf label what it displays.
KIND_CHANNELS: dict[str, tuple[str, ...]] = {
    "nfc_reader": ("state", "telemetry", "nfc"),
    "qr_scanner": ("state", "telemetry", "qr"),
    "camera": ("state", "telemetry", "qr", "frame"),
    "kiosk": ("state", "telemetry", "nfc", "qr"),
    "signage": ("state", "telemetry", "play", "preview"),
    "shelf_label": ("state", "telemetry", "label"),
}

#: What the edge publishes for in-store consumers under ``events/`` and ``edge/``.
EDGE_CHANNELS = ("interest", "presence", "security", "rejected")

#: Command families the edge sends to in-store devices (``{family}/{device_id}/cmd``).
COMMAND_FAMILIES = tuple(dict.fromkeys(COMMAND_FAMILY.values()))  # kiosk, signage, label

#: In-store request/response (docs/protocol.md section 13): a device asks on
#: ``req/{device_id}``, the edge answers on ``reply/{device_id}``. Both carry the
#: device id so the broker ACL, not the edge's goodwill, keeps replies private.
REQUEST_FAMILY = "req"
REPLY_FAMILY = "reply"

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TopicError(ValueError):
    """A topic that is not part of the Vitrine contract."""


def valid_id(value: str) -> bool:
    """Store and device ids are short, MQTT-safe tokens (no ``/``, ``+`` or ``#``)."""
    return bool(_ID_RE.match(value))


def _check(kind: str, value: str) -> str:
    if not valid_id(value):
        raise TopicError(f"invalid {kind} id {value!r}")
    return value


def device_topic(store_id: str, device_id: str, channel: str) -> str:
    if channel not in DEVICE_CHANNELS:
        raise TopicError(f"unknown device channel {channel!r}")
    return f"{PREFIX}/{_check('store', store_id)}/devices/{_check('device', device_id)}/{channel}"


def device_subscription(store_id: str) -> str:
    """Wildcard the edge subscribes to for every device message of its store."""
    return f"{PREFIX}/{_check('store', store_id)}/devices/+/+"


def event_topic(store_id: str, kind: str) -> str:
    if kind not in EDGE_CHANNELS:
        raise TopicError(f"unknown event kind {kind!r}")
    return f"{PREFIX}/{_check('store', store_id)}/events/{kind}"


def events_subscription(store_id: str) -> str:
    return f"{PREFIX}/{_check('store', store_id)}/events/+"


def command_topic(store_id: str, family: str, device_id: str) -> str:
    if family not in COMMAND_FAMILIES:
        raise TopicError(f"unknown command family {family!r}")
    return f"{PREFIX}/{_check('store', store_id)}/{family}/{_check('device', device_id)}/cmd"


def request_topic(store_id: str, device_id: str) -> str:
    """Where ``device_id`` publishes its requests to the edge."""
    return f"{PREFIX}/{_check('store', store_id)}/{REQUEST_FAMILY}/{_check('device', device_id)}"


def reply_topic(store_id: str, device_id: str) -> str:
    """Where the edge answers ``device_id``; readable by that device only."""
    return f"{PREFIX}/{_check('store', store_id)}/{REPLY_FAMILY}/{_check('device', device_id)}"


def requests_subscription(store_id: str) -> str:
    """What the edge subscribes to for every device's requests."""
    return f"{PREFIX}/{_check('store', store_id)}/{REQUEST_FAMILY}/+"


def parse_request_topic(topic: str) -> tuple[str, str]:
    """``(store_id, device_id)`` of ``vitrine/v1/{store}/req/{device}``; TopicError otherwise."""
    parts = topic.split("/")
    if (len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX or parts[3] != REQUEST_FAMILY
            or not valid_id(parts[2]) or not valid_id(parts[4])):
        raise TopicError(f"not a request topic: {topic[:200]!r}")
    return parts[2], parts[4]


def is_request_topic(topic: str) -> bool:
    """Cheap test on the edge's receive path (a full parse follows)."""
    return topic.count("/") == 4 and topic.split("/", 4)[3] == REQUEST_FAMILY
#: Where the edge tells a device which of its messages are committed:
#: ``committed/{device_id}``, a JSON object ``{"committed": [msg_id, ...]}``.
COMMIT_FAMILY = "committed"


def commit_topic(store_id: str, device_id: str) -> str:
    """Commit notices for one device (QoS 1, not retained; docs/protocol.md)."""
    return f"{PREFIX}/{_check('store', store_id)}/{COMMIT_FAMILY}/{_check('device', device_id)}"


def edge_state_topic(store_id: str) -> str:
    """Retained birth/last-will of the edge node itself."""
    return f"{PREFIX}/{_check('store', store_id)}/edge/state"


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    store_id: str
    device_id: str
    channel: str


def parse_device_topic(topic: str) -> DeviceTopic:
    """Split ``vitrine/v1/{store}/devices/{device}/{channel}``; raise TopicError otherwise."""
    parts = topic.split("/")
    if (
        len(parts) != 6
        or f"{parts[0]}/{parts[1]}" != PREFIX
        or parts[3] != "devices"
        or parts[5] not in DEVICE_CHANNELS
        or not valid_id(parts[2])
        or not valid_id(parts[4])
    ):
        raise TopicError(f"not a device topic: {topic[:200]!r}")
    return DeviceTopic(parts[2], parts[4], parts[5])
