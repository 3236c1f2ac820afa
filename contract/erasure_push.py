"""MQTT topic and message of the erasure push: central's bridge nudges, the edge pulls.

An erasure must reach an online store within seconds, not at its next pull. The
push bridge (``central/erasure_push.py``, in the same process as the stock
push) publishes on ``vitrine/v1/{store}/edge/sync/erasures`` (QoS 1; under
``edge/`` for the same reason as the stock push: only principals of role
``edge`` may write there) a **nudge**, not the orders themselves::

    {"seq": 42}

"central holds erasure orders up to seq 42": the edge then pulls the erasure
feed at once over its authenticated HTTP link (``edge/erasure.py``) and applies
what it has not applied yet. No customer id travels on the store broker, and a
forged or replayed nudge costs one pull.
"""

from __future__ import annotations

import json

from .topics import PREFIX, TopicError, valid_id

#: A nudge is a few bytes; anything much larger is not one.
MAX_ERASURE_MESSAGE_BYTES = 256


class ErasureMessageError(ValueError):
    """An erasure nudge that is not in the documented shape."""


def sync_erasures_topic(store_id: str) -> str:
    """``vitrine/v1/{store}/edge/sync/erasures``."""
    if not valid_id(store_id):
        raise TopicError(f"invalid store id {store_id!r}")
    return f"{PREFIX}/{store_id}/edge/sync/erasures"


def erasure_message(seq: int) -> bytes:
    """Encode a nudge: central holds erasure orders up to ``seq``."""
    return json.dumps({"seq": seq}, separators=(",", ":")).encode()


def parse_erasure_message(payload: bytes) -> int:
    """The seq of a nudge; raise :class:`ErasureMessageError` with the reason."""
    if len(payload) > MAX_ERASURE_MESSAGE_BYTES:
        raise ErasureMessageError(f"{len(payload)} bytes > {MAX_ERASURE_MESSAGE_BYTES}")
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ErasureMessageError(f"not JSON: {exc}") from None
    seq = body.get("seq") if isinstance(body, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
        raise ErasureMessageError('expected {"seq": <non-negative integer>}')
    return seq
