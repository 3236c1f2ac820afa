"""The screen's disk cache: its playlists and the assets they use, so it plays offline.

A screen that reboots while the edge or the broker is down must still play its
schedule. Everything it needs lives under its cache directory:

* ``playlist.json``: the last playlist set the edge delivered (``contract.playlists``
  format, already filtered to this screen), written atomically (temp + rename);
* ``assets/<sha256>``: the images, checked against their id when read.

When a new playlist set arrives, assets no playlist uses any more are deleted
(so a deleted item's picture cannot come back) and the set replaces the old
one as a whole: no stale schedule survives a reconnect.
"""

from __future__ import annotations

import json
import logging
import os
from io import BytesIO
from pathlib import Path

from PIL import Image

from contract.asset_fetch import ASSET_ID_RE, asset_ok
from contract.playlists import PlaylistError, PlaylistSet, parse_playlists

log = logging.getLogger("vitrine.signage.cache")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class ScreenCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.assets_dir = self.root / "assets"
        self.assets_dir.mkdir(parents=True, exist_ok=True)
        self._images: dict[str, Image.Image] = {}

    # -- playlists ------------------------------------------------------------------------

    def load_playlists(self) -> PlaylistSet | None:
        path = self.root / "playlist.json"
        try:
            return parse_playlists(json.loads(path.read_text("utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, PlaylistError) as exc:
            log.warning("cached playlist %s unusable (%s); waiting for the edge", path, exc)
            return None

    def save_playlists(self, playlists: PlaylistSet) -> None:
        _atomic_write(self.root / "playlist.json",
                      json.dumps(playlists.to_dict(), ensure_ascii=False).encode())
        keep = playlists.asset_ids()
        for path in self.assets_dir.iterdir():
            if path.name not in keep and ASSET_ID_RE.match(path.name):
                path.unlink(missing_ok=True)
                self._images.pop(path.name, None)

    # -- assets ----------------------------------------------------------------------------

    def has_asset(self, asset_id: str) -> bool:
        return (self.assets_dir / asset_id).exists()

    def put_asset(self, asset_id: str, data: bytes) -> bool:
        """Store bytes fetched for ``asset_id``; False (and nothing stored) if they differ."""
        if not asset_ok(asset_id, data):
            return False
        _atomic_write(self.assets_dir / asset_id, data)
        return True

    def image(self, asset_id: str) -> Image.Image | None:
        """Decoded image for the renderer (kept in memory: the same few play all day)."""
        if asset_id in self._images:
            return self._images[asset_id]
        if not ASSET_ID_RE.match(asset_id):
            return None
        try:
            data = (self.assets_dir / asset_id).read_bytes()
        except OSError:
            return None
        if not asset_ok(asset_id, data):
            return None
        try:
            im = Image.open(BytesIO(data))
            im.load()
        except (OSError, ValueError):
            return None
        self._images[asset_id] = im.convert("RGB")
        return self._images[asset_id]
