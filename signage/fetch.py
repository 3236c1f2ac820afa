"""Fetch an asset from the edge's asset server (``edge/asset_server.py``) by its id."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Callable

log = logging.getLogger("vitrine.signage.fetch")
MAX_ASSET_BYTES = 8 * 1024 * 1024


def http_fetcher(base_url: str, timeout: float = 5.0) -> Callable[[str], bytes | None]:
    """A ``fetch_asset`` for :class:`signage.player.Player`: None when unreachable or absent.

    The caller checks the bytes against the id (``ScreenCache.put_asset``).
    """
    base = base_url.rstrip("/")

    def fetch(asset_id: str) -> bytes | None:
        try:
            with urllib.request.urlopen(f"{base}/v1/assets/{asset_id}",  # noqa: S310
                                        timeout=timeout) as resp:
                return resp.read(MAX_ASSET_BYTES + 1)[:MAX_ASSET_BYTES]
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.info("asset %s not fetched from %s: %s", asset_id[:12], base, exc)
            return None

    return fetch
