"""Product pictures at the kiosk: from the edge's asset server, kept on the kiosk's disk.

The product page names its picture by asset id (the SHA-256 of the file, from
``kiosk_product``). :class:`ImageCache` answers at once with the file on disk,
or None while it fetches it on a worker thread (the page shows a placeholder
meanwhile, and also when the edge has no picture or cannot be reached); when
the picture arrives, ``on_ready(asset_id)`` is called so the page can show it.
Only bytes whose hash is their id are kept (``contract.asset_fetch.asset_ok``),
written atomically, so a file in the cache can be shown without checking again.
The cache is bounded (oldest files out first): kiosks run for weeks.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from contract.asset_fetch import ASSET_ID_RE, asset_ok

log = logging.getLogger("vitrine.kiosk.images")

#: Disk the kiosk gives pictures (a catalogue page's worth many times over).
BUDGET_BYTES = 200 * 1024 * 1024
#: An id the edge could not give is asked again only after this long.
RETRY_S = 30.0


class ImageCache:
    def __init__(self, root: str | Path, fetch: Callable[[str], bytes | None] | None, *,
                 on_ready: Callable[[str], None] | None = None,
                 budget_bytes: int = BUDGET_BYTES, clock: Callable[[], float] | None = None
                 ) -> None:
        import time

        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.fetch = fetch
        self.on_ready = on_ready
        self.budget_bytes = budget_bytes
        self.clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._failed: dict[str, float] = {}
        self.fetched = 0
        self.rejected = 0

    def path(self, asset_id: str | None) -> Path | None:
        """The picture's file if it is on disk; otherwise start fetching it and return None."""
        if not asset_id or not ASSET_ID_RE.match(asset_id):
            return None
        path = self.root / asset_id
        if path.exists():
            return path
        with self._lock:
            if (asset_id in self._pending or self.fetch is None
                    or self.clock() - self._failed.get(asset_id, -RETRY_S - 1) < RETRY_S):
                return None
            self._pending.add(asset_id)
        threading.Thread(target=self._get, args=(asset_id,), name="kiosk-image",
                         daemon=True).start()
        return None

    def get_now(self, asset_id: str) -> Path | None:
        """Fetch on this thread (tests, warm-up); the file or None."""
        if not ASSET_ID_RE.match(asset_id):
            return None
        with self._lock:
            self._pending.add(asset_id)
        self._get(asset_id, notify=False)
        path = self.root / asset_id
        return path if path.exists() else None

    def _get(self, asset_id: str, notify: bool = True) -> None:
        ok = False
        try:
            assert self.fetch is not None
            data = self.fetch(asset_id)
            if data is not None and asset_ok(asset_id, data):
                tmp = self.root / f".{asset_id}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, self.root / asset_id)
                self.fetched += 1
                ok = True
                self._trim(keep=asset_id)
            elif data is not None:
                self.rejected += 1
                log.warning("asset %s: bytes do not match their id; not kept", asset_id[:12])
        except Exception:
            log.exception("fetching asset %s failed", asset_id[:12])
        finally:
            with self._lock:
                self._pending.discard(asset_id)
                if not ok:
                    self._failed[asset_id] = self.clock()
        if ok and notify and self.on_ready is not None:
            self.on_ready(asset_id)

    def _trim(self, keep: str) -> None:
        files = [p for p in self.root.iterdir() if ASSET_ID_RE.match(p.name)]
        sizes = {p: p.stat().st_size for p in files}
        total = sum(sizes.values())
        for p in sorted(files, key=lambda p: p.stat().st_mtime):
            if total <= self.budget_bytes:
                break
            if p.name != keep:
                total -= sizes[p]
                p.unlink(missing_ok=True)
