"""Reading a request's JSON body and query parameters, strictly, with a reason on refusal.

Python's ``json`` (and so Flask's ``get_json``) accepts ``NaN`` and
``Infinity``, which are not JSON: one stored ``NaN`` made every later export
invalid JSON and every consent withdrawal of that customer fail. It also
recurses once per nesting level, so a body of ten thousand ``[`` ended in a
500. Every endpoint of central reads its body through :func:`json_body`
instead, which refuses both with a 400 that says why, and bounds every number
(:data:`central.json_safe.MAX_ABS_NUMBER`) so nothing reaches a ``BIGINT`` column it cannot fit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import request

from central.errors import BadRequest
from central.json_safe import MAX_DEPTH, problem

#: Largest integer a query parameter (``since``, ``limit``) may hold: a signed BIGINT.
MAX_QUERY_INT = 2**63 - 1
_INT = re.compile(r"-?[0-9]{1,19}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def check_value(value: Any, where: str = "body") -> None:
    """Raise :class:`BadRequest` when ``value`` nests too deep or holds an unbounded number."""
    reason = problem(value)
    if reason:
        raise BadRequest(f"{where} {reason}")


def parse_json(raw: bytes | str, where: str = "body") -> Any:
    """Decode strict JSON: no ``NaN``/``Infinity``, bounded depth and numbers."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{where} is not valid JSON: {exc}") from None
    check_value(value, where)
    return value


def json_body() -> Any:
    """The request body as strict JSON (see :func:`parse_json`); 400 when absent or bad."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest("a JSON body is required")
    return parse_json(raw)


def int_arg(name: str, default: int, minimum: int = 0, maximum: int = MAX_QUERY_INT) -> int:
    """Integer query parameter ``name``, clamped to ``[minimum, maximum]``; 400 if not one."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _INT.fullmatch(raw.strip()):
        raise BadRequest(f"{name} must be an integer of at most 19 digits")
    return min(max(int(raw), minimum), maximum)
