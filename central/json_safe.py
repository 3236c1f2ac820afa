"""JSON out of central is always strict JSON, whatever an older version stored.

Events stored before central refused ``NaN`` may still hold it in their
payload (Python's ``json`` reads it back); an export or a rewritten payload must
not pass it on, since no other JSON parser accepts it. Non-finite numbers
become ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (iterative: any depth)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if not isinstance(value, dict | list):
        return value
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        src, dst = stack.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for key, item in items:
            if isinstance(item, float) and not math.isfinite(item):
                item = None
            elif isinstance(item, dict | list):
                child: Any = {} if isinstance(item, dict) else []
                stack.append((item, child))
                item = child
            if isinstance(dst, dict):
                dst[key] = item
            else:
                dst.append(item)
    return root


def loads_lenient(text: str) -> Any:
    """Parse a stored payload; ``NaN``/``Infinity`` read as ``None``, garbage as ``{}``."""
    try:
        return finite(json.loads(text))
    except (ValueError, RecursionError):
        return {}


def dumps_finite(value: Any) -> str:
    """Compact strict JSON of ``value`` (non-finite numbers as ``null``)."""
    return json.dumps(finite(value), separators=(",", ":"), allow_nan=False)


#: Deepest nesting accepted in a request; the deepest legitimate body is ~5 levels.
MAX_DEPTH = 32
#: Largest magnitude of any number accepted: exact in a double, fits a BIGINT.
MAX_ABS_NUMBER = 2**53


def problem(value: Any, max_depth: int = MAX_DEPTH, max_abs: float = MAX_ABS_NUMBER
            ) -> str | None:
    """Why ``value`` is not acceptable (too deep, a non-finite or huge number), or None.

    The reason starts with where (``lines[2].quantity``). Iterative, so it can
    itself never hit the recursion limit.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:  # PostgreSQL text cannot hold NUL; SQLite would cut it
                return f"{path or 'value'}: text must not contain NUL characters"
            continue
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int | float):
            if not math.isfinite(item) or abs(item) > max_abs:
                return (f"{path or 'value'}: numbers must be finite and at most 2**53 in "
                        f"magnitude, got {str(item)[:40]}")
            continue
        if depth > max_depth:
            return f"{path or 'value'}: nested deeper than {max_depth} levels"
        if isinstance(item, dict):
            if any("\x00" in str(k) for k in item):
                return f"{path or 'value'}: keys must not contain NUL characters"
            stack.extend((v, depth + 1, f"{path}.{str(k)[:40]}" if path else str(k)[:40])
                         for k, v in item.items())
        else:
            stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(item))
    return None
