"""Click & collect in another store: which stores to offer, nearest with stock first.

The stock figures come from the edge (the kit's ``stock`` op, one per product in
the cart: the same view the product page shows). Names and distances come from
the kiosk's own store directory (``--stores FILE``), since only the kiosk knows
where it stands::

    [{"id": "store-lyon", "name": "Lyon Part-Dieu", "distance_km": 4.2}, ...]

A store is *available* when it holds every line of the cart in the quantity
ordered; available stores come first, nearest first (unknown distances last),
then the rest, which the picker shows but does not let the shopper choose.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from contract.topics import valid_id

#: Most stores a directory may list (the picker is a short scrolling list).
MAX_STORES = 200


class DirectoryError(ValueError):
    """The store directory file is malformed; the message says where."""


def parse_directory(data: Any) -> dict[str, dict[str, Any]]:
    """``[{"id", "name", "distance_km"?}]`` -> ``{id: {"name", "distance_km"}}``, or raise."""
    if not isinstance(data, list) or len(data) > MAX_STORES:
        raise DirectoryError(f"a store directory is a list of at most {MAX_STORES} stores")
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict) or set(item) - {"id", "name", "distance_km"}:
            raise DirectoryError(f"[{i}]: an object with id, name and distance_km only")
        sid, name, dist = item.get("id"), item.get("name"), item.get("distance_km")
        if not isinstance(sid, str) or not valid_id(sid) or sid in out:
            raise DirectoryError(f"[{i}].id: a unique store id")
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 60:
            raise DirectoryError(f"[{i}].name: 1 to 60 characters")
        if dist is not None and (isinstance(dist, bool) or not isinstance(dist, int | float)
                                 or not math.isfinite(dist) or not 0 <= dist <= 20_000):
            raise DirectoryError(f"[{i}].distance_km: a number from 0 to 20000")
        out[sid] = {"name": name.strip(), "distance_km": dist}
    return out


def load_directory(path: str | Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return {}
    try:
        return parse_directory(json.loads(Path(path).read_text("utf-8")))
    except (OSError, ValueError) as exc:
        raise DirectoryError(f"{path}: {exc}") from None


def store_options(views: dict[str, dict[str, Any]], quantities: dict[str, int],
                  directory: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The picker's rows from the edge's stock ``views`` (gtin -> view) for a cart of
    ``quantities`` (gtin -> how many): ``store_id``, ``name``, ``distance_km``,
    ``quantity`` (the fewest of any line there), ``available``."""
    stores = set(directory)
    for view in views.values():
        stores |= set(view.get("other_stores") or {})
    rows = []
    for sid in stores:
        held = [(views.get(g) or {}).get("other_stores", {}).get(sid) for g in quantities]
        known = [q for q in held if q is not None]
        entry = directory.get(sid, {})
        rows.append({"store_id": sid, "name": entry.get("name") or sid,
                     "distance_km": entry.get("distance_km"),
                     "quantity": min(known) if len(known) == len(held) and known else 0,
                     "available": bool(quantities) and all(
                         q is not None and q >= quantities[g]
                         for g, q in zip(quantities, held, strict=True))})
    rows.sort(key=lambda r: (not r["available"], r["distance_km"] is None,
                             r["distance_km"] or 0.0, r["name"].casefold(), r["store_id"]))
    return rows
