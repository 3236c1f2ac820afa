"""Runs the edge's signage and label side next to the writer, never in its way.

:class:`SignageRuntime` owns, in one thread with its own SQLite connection:
the asset cache and its HTTP server (``edge/assets.py``,
``edge/asset_server.py``), the label service (``edge/labels.py``) and the
signage service (``edge/signage_service.py``). The writer thread only hands it
the ``show_product`` commands of each committed batch through a queue
(:meth:`SignageRuntime.route`), so rendering a label or querying stock never
delays an acknowledgement; the thread wakes on the queue at once (a tap
reaches its screen in milliseconds) and polls every ``poll_s`` for playlist
versions, released spotlights and price changes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .assets import AssetCache
from .config import EdgeConfig
from .db import connect
from .labels import LabelService
from .signage_service import SignageService

log = logging.getLogger("vitrine.edge.signage")

#: publish(family, device_id, payload, retain)
PublishCommand = Callable[[str, str, dict[str, Any], bool], None]


class SignageRuntime:
    def __init__(self, cfg: EdgeConfig, publish: PublishCommand, *,
                 assets: AssetCache | None = None, poll_s: float = 0.25):
        self.cfg = cfg
        self.poll_s = poll_s
        self.db = connect(cfg.db_path, synchronous=cfg.sqlite_synchronous)
        if assets is None:  # (an empty cache is falsy: it has a length)
            assets = AssetCache(cfg.assets_dir or Path(cfg.db_path).parent / "assets",
                                cfg.assets_budget_mb * 1024 * 1024)
        self.assets = assets
        self.labels = LabelService(self.db.conn, lambda f, d, p: publish(f, d, p, False),
                                   assets=self.assets,
                                   digital_link_base=cfg.digital_link_base)
        self.service = SignageService(self.db.conn, cfg.store_id, publish, labels=self.labels,
                                      hold_s=cfg.spotlight_hold_s,
                                      min_show_s=cfg.spotlight_min_show_s)
        self.server: Any = None
        self.assets_url: str | None = None
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-signage", daemon=True)

    def start(self) -> SignageRuntime:
        if self.cfg.assets_port:
            from .asset_server import AssetServer

            self.server = AssetServer(self.assets, self.cfg.assets_host,
                                      self.cfg.assets_port).start()
            self.assets_url = self.server.url
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(10)
        if self.server is not None:
            self.server.stop()
        self.db.conn.close()

    def route(self, commands: list[tuple[str, str, dict[str, Any]]]
              ) -> list[tuple[str, str, dict[str, Any]]]:
        """Take the screens' ``show_product`` commands; return the others to publish."""
        rest = []
        for family, device_id, cmd in commands:
            if family == "signage" and cmd.get("cmd") == "show_product":
                self._queue.put((device_id, cmd))
            else:
                rest.append((family, device_id, cmd))
        return rest

    def _run(self) -> None:
        try:
            self.labels.refresh()  # a label may have missed its bitmap while the edge was down
        except Exception:
            log.exception("initial label refresh failed; retrying at the next change")
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=self.poll_s)
            except queue.Empty:
                first = None
            batch = [first] if first else []
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more:
                    batch.append(more)
            try:
                for screen, cmd in batch:
                    self.service.offer(screen, cmd)
                self.service.poll()
            except Exception:  # a bug here must not silence screens for good
                log.exception("signage/labels step failed; continuing")
