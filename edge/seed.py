"""Seed the edge's registry and catalogue from a store layout file.

The layout file (documented in docs/protocol.md, example in
``firmware_sim/layouts/demo_store.json``, loaded and validated by
``contract.layout``) lists the store's devices, the
product tags stuck on shelves and the products. In production the catalogue
comes from the central sync; the layout remains the installer's description of
what hardware is where. Re-seeding is an upsert: safe to run at every start.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlite_utils

from contract.layout import LayoutError
from contract.layout import load_layout as validated_layout

__all__ = ["LayoutError", "load_layout", "register_device", "seed"]


def load_layout(path: str | Path) -> dict[str, Any]:
    """Read and fully validate a layout (``contract.layout``: one loader for every part).

    A broken file stops the edge with every problem listed (:class:`LayoutError`)
    rather than seeding half of it.
    """
    return validated_layout(path).to_dict()


def seed(db: sqlite_utils.Database, layout: dict[str, Any]) -> dict[str, int]:
    now = time.time()
    devices = [{"device_id": d["id"], "kind": d.get("kind"), "zone": d.get("zone"),
                "shelf": d.get("shelf")} for d in layout.get("devices", [])]
    tags = [{"uid": t["uid"].lower(), "gtin": t.get("gtin"), "zone": t.get("zone"),
             "shelf": t.get("shelf")} for t in layout.get("tags", [])]
    products = [{"gtin": p["gtin"], "name": p["name"], "brand": p.get("brand"),
                 "category": p.get("category"), "price_cents": p.get("price_cents"),
                 "currency": p.get("currency", "EUR"), "updated_at": now}
                for p in layout.get("products", [])]
    with db.conn:
        for d in devices:
            db.conn.execute(
                "INSERT INTO devices (device_id, kind, zone, shelf) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(device_id) DO UPDATE SET kind = excluded.kind,"
                " zone = excluded.zone, shelf = excluded.shelf",
                (d["device_id"], d["kind"], d["zone"], d["shelf"]))
        if tags:
            db["tags"].upsert_all(tags, pk="uid")
        if products:
            db["products"].upsert_all(products, pk="gtin")
    return {"devices": len(devices), "tags": len(tags), "products": len(products)}


def register_device(db: sqlite_utils.Database, device_id: str, kind: str,
                    zone: str | None = None, shelf: str | None = None) -> None:
    seed(db, {"store_id": "-", "devices": [{"id": device_id, "kind": kind, "zone": zone,
                                            "shelf": shelf}]})
