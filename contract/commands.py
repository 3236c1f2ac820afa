"""Typed commands from the edge to kiosks, signage screens and shelf labels.

One frozen dataclass per ``cmd`` of ``schemas/command.json``, built and parsed
here, next to the topic builders (``contract.topics.command_topic``), so that the
edge that writes a command and the device that reads it cannot disagree: the
edge builds a dataclass and sends :meth:`to_payload`; a device gets the same
dataclass back from :func:`parse_command`, already validated against the schema.

Privacy is part of the type: :class:`ShowProduct` and :class:`LabelBitmap` have no
customer fields at all (the schema forbids them too), because screens and labels
are public.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from .validation import SchemaError, validate

#: A command payload larger than this is refused unparsed (the biggest real one is ~400 B).
MAX_COMMAND_BYTES = 16_384


class CommandError(ValueError):
    """A command payload that is not JSON, not valid against command.json, or unknown."""


@dataclass(frozen=True, slots=True)
class _Command:
    cmd: ClassVar[str]
    cmd_id: str
    ts: float

    def to_payload(self) -> dict[str, Any]:
        """The JSON object sent on the wire (validated: a builder bug fails here, loudly)."""
        payload = {"cmd": self.cmd, **asdict(self)}
        try:
            return validate("command", payload)
        except SchemaError as exc:
            raise CommandError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class ShowProduct(_Command):
    """Signage: a product was tapped or scanned in the screen's zone. No customer data."""

    cmd: ClassVar[str] = "show_product"
    gtin: str
    zone: str | None = None
    name: str | None = None
    brand: str | None = None
    price_cents: int | None = None
    currency: str | None = None
    #: What the screen shows around the price (docs/protocol.md section 14.3).
    promo: str | None = None
    was_price_cents: int | None = None
    image: str | None = None
    stock: int | None = None
    online: bool = False


@dataclass(frozen=True, slots=True)
class CustomerIdentified(_Command):
    """Kiosk: a customer identified at THIS kiosk (its reader or camera)."""

    cmd: ClassVar[str] = "customer_identified"
    customer_id: str
    session_id: str
    method: str
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class SetPlaylist(_Command):
    """Signage: every playlist that may play on this screen (retained on its topic)."""

    cmd: ClassVar[str] = "set_playlist"
    version: str
    playlists: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LabelBitmap(_Command):
    """Shelf label: the bitmap to display, packed (contract/eslabel.py), and its hash."""

    cmd: ClassVar[str] = "label_bitmap"
    gtin: str
    width: int
    height: int
    planes: str
    hash: str
    price_cents: int | None = None
    currency: str | None = None


Command = ShowProduct | CustomerIdentified | SetPlaylist | LabelBitmap
COMMAND_TYPES: dict[str, type[_Command]] = {
    c.cmd: c for c in (ShowProduct, CustomerIdentified, SetPlaylist, LabelBitmap)}


def parse_command(data: bytes | str | dict[str, Any]) -> Command:
    """Validate a received command and return its dataclass; :class:`CommandError` if bad.

    Fields a newer edge adds are ignored (commands are open like events,
    docs/protocol.md section 12), so an old screen keeps working.
    """
    if isinstance(data, bytes | str):
        if len(data) > MAX_COMMAND_BYTES:
            raise CommandError(f"command of {len(data)} bytes (limit {MAX_COMMAND_BYTES})")
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommandError(f"command is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError("command is not a JSON object")
    try:
        validate("command", data)
    except SchemaError as exc:
        raise CommandError(str(exc)) from None
    cls = COMMAND_TYPES[data["cmd"]]  # the schema's enum guarantees a known cmd
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[return-value]
