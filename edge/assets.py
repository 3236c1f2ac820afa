"""The edge's asset cache: product images and signage media on disk, under a size budget.

Screens and labels never fetch from central: the edge keeps every image they
need on its own disk and hands them out by content id. An asset's id is the
SHA-256 of its bytes (hex), so:

* the same image is stored once however many products or playlists use it;
* a screen that has an id cached never needs to ask again (content never
  changes under an id), and can check what it received;
* a playlist names exactly the bytes it was made with.

The cache is bounded by ``budget_bytes``: when a new asset would exceed it, the
least recently used assets are evicted (``touch`` on every use), except the
ones marked as pinned, i.e. used by a current playlist or product (eviction of
those would leave a screen with a placeholder). Files are written to a
temporary name and renamed, so a crash never leaves half an image under a
valid id.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

# One definition of an asset id (its SHA-256, hex) for the edge and every device.
from contract.asset_fetch import ASSET_ID_RE as ASSET_ID_RE

#: Largest single asset accepted: a 1080p JPEG is ~100-400 KB.
MAX_ASSET_BYTES = 8 * 1024 * 1024


class AssetError(ValueError):
    """An asset id that is not a SHA-256, or bytes too large for the cache."""


def asset_id_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_asset_id(asset_id: str) -> str:
    if not isinstance(asset_id, str) or not ASSET_ID_RE.match(asset_id):
        raise AssetError(f"not an asset id: {str(asset_id)[:80]!r}")
    return asset_id


class AssetCache:
    """Content-addressed files under ``root`` with LRU eviction (see module doc)."""

    def __init__(self, root: str | Path, budget_bytes: int = 512 * 1024 * 1024):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.budget_bytes = budget_bytes
        self._lock = threading.Lock()
        self._pinned: set[str] = set()
        self.evicted_total = 0
        # LRU order from the files' mtimes (touch() updates them), oldest first.
        found = []
        for path in self.root.iterdir():
            if ASSET_ID_RE.match(path.name):
                st = path.stat()
                found.append((st.st_mtime, path.name, st.st_size))
            elif path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # left by a crash mid-write
        self._sizes: OrderedDict[str, int] = OrderedDict(
            (name, size) for _m, name, size in sorted(found))

    @property
    def used_bytes(self) -> int:
        return sum(self._sizes.values())

    def __contains__(self, asset_id: object) -> bool:
        return asset_id in self._sizes

    def __len__(self) -> int:
        return len(self._sizes)

    def path(self, asset_id: str) -> Path:
        return self.root / check_asset_id(asset_id)

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent); return its id. Evicts LRU unpinned assets if needed."""
        if len(data) > MAX_ASSET_BYTES or len(data) > self.budget_bytes:
            raise AssetError(f"asset of {len(data)} bytes exceeds the limit")
        asset_id = asset_id_of(data)
        with self._lock:
            if asset_id in self._sizes:
                self._touch(asset_id)
                return asset_id
            self._make_room(len(data))
            final = self.root / asset_id
            tmp = final.with_name(f"{asset_id}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, final)
            self._sizes[asset_id] = len(data)
        return asset_id

    def get(self, asset_id: str) -> bytes | None:
        """The bytes, or None when not cached (or evicted, or damaged on disk)."""
        path = self.path(asset_id)
        with self._lock:
            if asset_id not in self._sizes:
                return None
            try:
                data = path.read_bytes()
            except OSError:
                self._sizes.pop(asset_id, None)
                return None
            if asset_id_of(data) != asset_id:  # bit rot or a hand-edited file
                self._sizes.pop(asset_id, None)
                path.unlink(missing_ok=True)
                return None
            self._touch(asset_id)
            return data

    def pin(self, asset_ids: Iterable[str]) -> None:
        """Replace the set of assets that eviction must not remove (current content)."""
        with self._lock:
            self._pinned = set(asset_ids)

    def _touch(self, asset_id: str) -> None:
        self._sizes.move_to_end(asset_id)
        now = time.time()
        with contextlib.suppress(OSError):
            os.utime(self.root / asset_id, (now, now))

    def _make_room(self, incoming: int) -> None:
        used = sum(self._sizes.values())
        for victim in list(self._sizes):
            if used + incoming <= self.budget_bytes:
                break
            if victim in self._pinned:
                continue
            used -= self._sizes.pop(victim)
            (self.root / victim).unlink(missing_ok=True)
            self.evicted_total += 1
        if used + incoming > self.budget_bytes:
            raise AssetError(f"asset cache full: {used} bytes pinned, budget "
                             f"{self.budget_bytes}")
