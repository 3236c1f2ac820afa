"""Device kinds: the one list every part checks a device against.

A kind decides what a device may do on the store broker (``vitrine.provisioning``
renders the ACL from it), which command family it receives (``{family}/{id}/cmd``),
whether it may ask the edge questions (``req/{id}``), and what the layout file,
the edge's registry and ``state.json`` accept. Before this module the list was
written out in five places and had already drifted once.
"""

from __future__ import annotations

#: Every kind of in-store device, in the order docs list them.
DEVICE_KINDS = ("nfc_reader", "qr_scanner", "camera", "kiosk", "signage", "shelf_label")

#: Kinds that only publish readings (no commands, no requests, clean sessions).
READER_KINDS = ("nfc_reader", "qr_scanner", "camera")

#: Kind -> command family: the device reads ``{family}/{device_id}/cmd``.
COMMAND_FAMILY = {"kiosk": "kiosk", "signage": "signage", "shelf_label": "label"}

#: Kinds that may send requests to the edge and read their own replies. A public
#: screen or a shelf label has no question to ask, so it gets no request topic.
ASKING_KINDS = ("kiosk",)


class UnknownKind(ValueError):
    """A device kind that is not in :data:`DEVICE_KINDS`."""


def check_kind(kind: str) -> str:
    """Return ``kind`` or raise :class:`UnknownKind` naming the allowed ones."""
    if kind not in DEVICE_KINDS:
        raise UnknownKind(f"unknown device kind {kind!r} (one of {', '.join(DEVICE_KINDS)})")
    return kind


def command_family(kind: str) -> str | None:
    """The command family a device of ``kind`` listens to, or None for readers."""
    return COMMAND_FAMILY.get(check_kind(kind))


def may_ask(kind: str) -> bool:
    return check_kind(kind) in ASKING_KINDS
