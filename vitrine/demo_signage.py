"""The demo's screens and shelf labels: players writing frames, 200 simulated labels.

Everything here runs in the demo process: one :class:`signage.player.Player`
per signage device of the layout, joined to the store through its own device
session (headless: the latest frame of each screen is
``{var}/frames/{screen}.jpg``), and ``label_count`` simulated e-paper labels
(``firmware_sim.shelf_label.SimLabel``), each with its own device identity,
spread over the products. Before that, the edge gets content: a Pillow-drawn
picture per product in its asset cache, a promotion on a few products, and
the example playlists (``signage/examples/demo_playlists.json``).

What the screens and labels do is printed: each new frame (screen, item,
trigger) and, every few seconds, how many labels show the current price.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from edge.assets import AssetCache
from edge.content import add_images, set_content
from edge.db import connect
from edge.demo_images import product_picture
from edge.signage_service import store_playlists

LABEL_PREFIX = "esl-"


def label_devices(products: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` labels over the products (every tenth a 4.2" one), for the edge layout."""
    out = []
    for n in range(count):
        product = products[n % len(products)]
        out.append({"id": f"{LABEL_PREFIX}{n + 1:04d}", "kind": "shelf_label",
                    "zone": product.get("zone"), "shelf": None, "gtin": product["gtin"],
                    "size": "4.2" if n % 10 == 0 else "2.9"})
    return out


def seed_content(db_path: Path, assets: AssetCache, products: list[dict[str, Any]]) -> int:
    """Pictures for every product (into the edge's own asset cache, which serves them),
    a promotion on every fifth, the example playlists."""
    db = connect(db_path)
    try:
        for n, p in enumerate(products):
            add_images(db.conn, assets, p["gtin"], [product_picture(
                p["gtin"], p["name"], p.get("brand"), p.get("category"))])
            if n % 5 == 0 and p.get("price_cents"):
                row = db.conn.execute("SELECT images FROM product_content WHERE gtin = ?",
                                      (p["gtin"],)).fetchone()
                set_content(db.conn, p["gtin"], promo="-20 % cette semaine",
                            was_price_cents=round(p["price_cents"] * 1.25),
                            images=json.loads(row[0]))
        example = resources.files("signage").joinpath("examples", "demo_playlists.json")
        store_playlists(db.conn, example.read_bytes())
    finally:
        db.conn.close()
    return len(products)


class DemoSignage:
    def __init__(self, *, var: Path, store_id: str, port: int, protocol: str,
                 passwords: dict[str, str], screens: list[tuple[str, str | None]],
                 labels: list[dict[str, Any]], assets_url: str | None,
                 line: Callable[[str, str], None]):
        self.var = var
        self.store_id = store_id
        self.port = port
        self.protocol = protocol
        self.passwords = passwords
        self.screens = screens
        self.labels = labels
        self.assets_url = assets_url
        self.line = line
        self.stop_event = threading.Event()
        self.sessions: list[Any] = []
        self.players: list[Any] = []
        self.disks: dict[str, Any] = {}
        self.previews: list[Any] = []
        self.sim_labels: list[Any] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        from contract.session import DeviceSession
        from firmware_sim.shelf_label import SimLabel
        from signage.cache import ScreenCache
        from signage.fetch import http_fetcher
        from signage.player import Player
        from signage.preview import PreviewSink
        from signage.profiles import LANDSCAPE, PORTRAIT
        from signage.sinks import DiskSink

        frames = self.var / "frames"
        for n, (screen, zone) in enumerate(self.screens):
            session = DeviceSession("127.0.0.1", self.port, self.store_id, screen,
                                    self.passwords[screen], kind="signage",
                                    protocol=self.protocol)
            disk = DiskSink(frames, screen)
            # the panel's live preview of this screen (signage/preview.py)
            preview = PreviewSink(disk, lambda p, s=session: s.publish_json("preview", p),
                                  lambda s=session: s.connected)
            self.disks[screen] = disk
            self.previews.append(preview)
            player = Player(screen, zone, PORTRAIT if n % 2 else LANDSCAPE,
                            ScreenCache(self.var / "screens" / screen), preview,
                            report=lambda r, s=session: s.publish_json("play", r),
                            fetch_asset=http_fetcher(self.assets_url) if self.assets_url
                            else None)
            session.on_command(player.on_command)
            session.start()
            self.sessions.append(session)
            self.players.append(player)
        for spec in self.labels:
            session = DeviceSession("127.0.0.1", self.port, self.store_id, spec["id"],
                                    self.passwords[spec["id"]], kind="shelf_label",
                                    protocol=self.protocol, heartbeat_s=300.0)
            label = SimLabel(spec["id"], session.publish_json)
            session.on_command(label.on_command)
            session.start()
            self.sessions.append(session)
            self.sim_labels.append(label)
        self._threads = [threading.Thread(target=self._play, name="demo-screens", daemon=True),
                         threading.Thread(target=self._watch, name="demo-watch", daemon=True)]
        for t in self._threads:
            t.start()
        self.line("SIGN", f"{len(self.players)} screen(s) playing, frames in {frames}; "
                          f"{len(self.sim_labels)} shelf labels online")

    def _play(self) -> None:
        while not self.stop_event.wait(0.05):
            for player in self.players:
                player.tick()
            for preview in self.previews:
                preview.poll()

    def _watch(self) -> None:
        shown: dict[str, tuple[str, str]] = {}
        updates = 0
        while not self.stop_event.wait(0.5):
            for player in self.players:
                meta = self.disks[player.screen_id].last
                if meta and shown.get(player.screen_id) != (meta["item_id"], meta["trigger"]):
                    shown[player.screen_id] = (meta["item_id"], meta["trigger"])
                    what = f"spotlight {meta['gtin']}" if meta["kind"] == "spotlight" \
                        else f"{meta['kind']} {meta['item_id']}"
                    self.line("SCREEN", f"{player.screen_id} shows {what} ({meta['trigger']})")
            total = sum(label.updates for label in self.sim_labels)
            if total != updates:
                self.line("LABEL", f"{total - updates} label update(s); "
                                   f"{sum(1 for x in self.sim_labels if x.shown)}"
                                   f"/{len(self.sim_labels)} labels show a bitmap")
                updates = total

    def stop(self) -> None:
        self.stop_event.set()
        for t in self._threads:
            t.join(5)
        for player in self.players:
            player.close()
        deadline = time.monotonic() + 5
        for session in self.sessions:
            session.close(flush_timeout=max(0.1, deadline - time.monotonic()))
