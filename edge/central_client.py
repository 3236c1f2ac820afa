"""Reading central from the edge: one small HTTP client with the store's bearer token.

stdlib only (``urllib``), like the forwarder: a store box should not need an HTTP
stack for a handful of GETs. Every failure (refused, reset, timeout, HTTP error,
bad or cut JSON) becomes one :class:`SyncError`, so callers map one exception to
"serve the local copy and back off".
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any


class SyncError(Exception):
    """Central unreachable, refusing, or answering something that is not a feed.

    ``status`` is central's HTTP status when it answered with an error, else None.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CentralReader:
    """GET JSON from central with the store's bearer token (stdlib only, like the forwarder)."""

    def __init__(self, url: str, token: str, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def get(self, path: str) -> dict[str, Any]:
        req = urllib.request.Request(self.url + path, method="GET")
        req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()[:200]
            except (OSError, http.client.HTTPException):
                body = b"(body cut)"
            raise SyncError(f"{path}: HTTP {exc.code} {body!r}", exc.code) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # refused, reset, timeout, bad JSON, or a reply cut mid-way (IncompleteRead)
            raise SyncError(f"{path}: {exc}") from None
        if not isinstance(body, dict):
            raise SyncError(f"{path}: not a JSON object")
        return body

    def get_bytes(self, path: str, limit: int = 8 * 1024 * 1024) -> bytes:
        """GET a binary resource (a product picture) from central, at most ``limit`` bytes."""
        req = urllib.request.Request(self.url + path, method="GET")
        req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                data = resp.read(limit + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise SyncError(f"{path}: {exc}") from None
        if len(data) > limit:
            raise SyncError(f"{path}: larger than {limit} bytes")
        return data
