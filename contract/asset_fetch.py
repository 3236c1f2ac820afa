"""Fetch an image from the edge's asset server (``edge/asset_server.py``) by its id.

Screens (``signage/``) and kiosks (``kiosk/``) both show product pictures the
edge serves as content-addressed files, ``GET /v1/assets/{sha256}``; this is
the one client. The id is the SHA-256 of the bytes, so a device checks what it
got with :func:`asset_ok` before keeping it: a wrong or truncated answer is
never shown, and a cached file can be trusted by its name.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable

log = logging.getLogger("vitrine.assets.fetch")
MAX_ASSET_BYTES = 8 * 1024 * 1024
ASSET_ID_RE = re.compile(r"^[0-9a-f]{64}$")


def asset_ok(asset_id: str, data: bytes) -> bool:
    """``data`` is the asset named ``asset_id`` (a well-formed id, and its SHA-256)."""
    return (isinstance(asset_id, str) and ASSET_ID_RE.match(asset_id) is not None
            and hashlib.sha256(data).hexdigest() == asset_id)


def http_fetcher(base_url: str, timeout: float = 5.0) -> Callable[[str], bytes | None]:
    """A ``fetch(asset_id) -> bytes | None``: None when unreachable or absent.

    The caller checks the bytes against the id (:func:`asset_ok`).
    """
    base = base_url.rstrip("/")

    def fetch(asset_id: str) -> bytes | None:
        if not ASSET_ID_RE.match(asset_id):  # nothing else goes into the URL
            return None
        try:
            with urllib.request.urlopen(f"{base}/v1/assets/{asset_id}",  # noqa: S310
                                        timeout=timeout) as resp:
                return resp.read(MAX_ASSET_BYTES + 1)[:MAX_ASSET_BYTES]
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.info("asset %s not fetched from %s: %s", asset_id[:12], base, exc)
            return None

    return fetch
