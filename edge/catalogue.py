"""Local copy of what enrichment needs: devices, tag registrations, products.

Held in memory because the pipeline looks these up for every message; the
tables are the source of truth and :meth:`Catalogue.reload` re-reads them after
a seed, a sync or a ``vitrine device add``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device_id: str
    kind: str | None
    zone: str | None
    shelf: str | None


@dataclass(frozen=True, slots=True)
class TagInfo:
    uid: str
    gtin: str | None
    zone: str | None
    shelf: str | None


class Catalogue:
    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.devices: dict[str, DeviceInfo] = {}
        self.tags: dict[str, TagInfo] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.reload()

    def reload(self) -> None:
        conn = self.db.conn
        self.devices = {
            r[0]: DeviceInfo(*r)
            for r in conn.execute("SELECT device_id, kind, zone, shelf FROM devices")
        }
        self.tags = {
            r[0].lower(): TagInfo(r[0].lower(), *r[1:])
            for r in conn.execute("SELECT uid, gtin, zone, shelf FROM tags")
        }
        self.products = {
            r[0]: {"gtin": r[0], "name": r[1], "brand": r[2], "category": r[3],
                   "price_cents": r[4], "currency": r[5]}
            for r in conn.execute(
                "SELECT gtin, name, brand, category, price_cents, currency FROM products")
        }

    def reload_devices(self) -> None:
        """Cheap partial reload: ``vitrine device add`` writes from another process."""
        self.devices = {
            r[0]: DeviceInfo(*r)
            for r in self.db.conn.execute("SELECT device_id, kind, zone, shelf FROM devices")
        }

    def device(self, device_id: str) -> DeviceInfo | None:
        return self.devices.get(device_id)

    def tag(self, uid: str) -> TagInfo | None:
        return self.tags.get(uid.lower())

    def product(self, gtin: str | None) -> dict[str, Any] | None:
        return self.products.get(gtin) if gtin else None
