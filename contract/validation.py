"""JSON Schemas of every Vitrine message, compiled once.

The schema files in ``contract/schemas/`` are the normative contract (devices in
other languages validate against the same files). They are compiled with
fastjsonschema because the edge validates every message on its hot path and the
compiled validators are an order of magnitude faster than interpreting them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

#: Largest payload accepted per device channel, in bytes. Anything larger is
#: quarantined unparsed: a shelf reader has no reason to send more, and an
#: unbounded JSON parse is a denial-of-service lever.
MAX_PAYLOAD_BYTES: dict[str, int] = {
    "state": 2_048,
    "nfc": 16_384,
    "qr": 8_192,
    "telemetry": 4_096,
    "frame": 2_097_152,
    "label": 1_024,
    "play": 2_048,
    "preview": 65_536,
}

SCHEMA_NAMES = ("state", "nfc", "qr", "frame", "telemetry", "interest", "presence", "security",
                "rejected", "command", "request", "reply",
                "label", "play", "play_event", "preview")


class SchemaError(ValueError):
    """A message that does not match its schema; ``str()`` says where."""


@cache
def schema(name: str) -> dict[str, Any]:
    if name not in SCHEMA_NAMES:
        raise KeyError(name)
    text = resources.files("contract").joinpath("schemas", f"{name}.json").read_text("utf-8")
    return json.loads(text)


@cache
def _compiled(name: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(schema(name))


def validate(name: str, message: Any) -> dict[str, Any]:
    """Return ``message`` if it matches schema ``name``, else raise :class:`SchemaError`."""
    try:
        _compiled(name)(message)
    except fastjsonschema.JsonSchemaException as exc:
        raise SchemaError(f"{name}: {exc.message}") from None
    return message
