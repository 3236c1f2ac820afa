"""Seed the edge's registry and catalogue from a store layout file.

The layout file (documented in docs/protocol.md, example in
``firmware_sim/layouts/demo_store.json``, loaded and validated by
``contract.layout``) lists the store's devices, the
product tags stuck on shelves and the products. In production the catalogue
comes from the central sync; the layout remains the installer's description of
what hardware is where. Re-seeding is an upsert: safe to run at every start, and
it writes only the rows that differ, so an unchanged layout writes nothing (an
edge restarted on a full disk must not fail on a no-op; see edge/startup.py).
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
                 "category": p.get("category"), "layout_price_cents": p.get("price_cents"),
                 "currency": p.get("currency", "EUR"), "updated_at": now}
                for p in layout.get("products", [])]
    conn = db.conn
    have_devices = {r[0]: r[1:] for r in conn.execute(
        "SELECT device_id, kind, zone, shelf FROM devices")}
    devices = [d for d in devices
               if have_devices.get(d["device_id"]) != (d["kind"], d["zone"], d["shelf"])]
    have_tags = {r[0]: r[1:] for r in conn.execute("SELECT uid, gtin, zone, shelf FROM tags")}
    tags = [t for t in tags if have_tags.get(t["uid"]) != (t["gtin"], t["zone"], t["shelf"])]
    have_products = {r[0]: r[1:] for r in conn.execute(
        "SELECT gtin, name, brand, category, layout_price_cents, currency FROM products")}
    products = [p for p in products if have_products.get(p["gtin"]) != (
        p["name"], p["brand"], p["category"], p["layout_price_cents"], p["currency"])]
    counts = {"devices": len(layout.get("devices", [])), "tags": len(layout.get("tags", [])),
              "products": len(layout.get("products", [])),
              "changed": len(devices) + len(tags) + len(products)}
    if not counts["changed"]:
        return counts
    with db.conn:
        for d in devices:
            db.conn.execute(
                "INSERT INTO devices (device_id, kind, zone, shelf) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(device_id) DO UPDATE SET kind = excluded.kind,"
                " zone = excluded.zone, shelf = excluded.shelf",
                (d["device_id"], d["kind"], d["zone"], d["shelf"]))
        if tags:
            db["tags"].upsert_all(tags, pk="uid")
        for p in products:
            # The layout price is the price in force only where neither central nor a
            # markdown sets one (edge/feed_apply.py's fallback): a restart must not
            # overwrite those with it.
            db.conn.execute(
                "INSERT INTO products (gtin, name, brand, category, price_cents, currency,"
                " updated_at, layout_price_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(gtin) DO UPDATE SET name = excluded.name,"
                " brand = excluded.brand, category = excluded.category,"
                " currency = excluded.currency, updated_at = excluded.updated_at,"
                " layout_price_cents = excluded.layout_price_cents,"
                " price_cents = CASE WHEN EXISTS (SELECT 1 FROM sync_prices s"
                "   WHERE s.gtin = excluded.gtin) OR EXISTS (SELECT 1 FROM local_markdowns m"
                "   WHERE m.gtin = excluded.gtin) THEN products.price_cents"
                "   ELSE excluded.price_cents END",
                (p["gtin"], p["name"], p["brand"], p["category"], p["layout_price_cents"],
                 p["currency"], p["updated_at"], p["layout_price_cents"]))
    return counts


def register_device(db: sqlite_utils.Database, device_id: str, kind: str,
                    zone: str | None = None, shelf: str | None = None) -> None:
    seed(db, {"store_id": "-", "devices": [{"id": device_id, "kind": kind, "zone": zone,
                                            "shelf": shelf}]})
