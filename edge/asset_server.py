"""Screens fetch images from the edge over HTTP: ``GET /v1/assets/{sha256}``.

Transport design for signage content (docs/protocol.md, signage section):

* the **playlist** (small JSON: items, schedules, asset ids) travels as a
  retained ``set_playlist`` command on the screen's own command topic, so a
  screen that reboots or reconnects gets its current playlist from the broker
  even when the edge process is down, through the same credentials and ACL
  as every other command;
* the **images** (50-400 KB each) do not belong on MQTT: a command is capped
  at 16 KB, and retained binaries would be resent on every resubscription and
  sit in the broker's memory. They are content-addressed files served by this
  small read-only HTTP server from the edge's asset cache; a screen fetches
  each id once, checks the SHA-256 of what it got and keeps it on disk.

Product pictures and promotion media are public (they are on the screens);
ids are hashes, so the server only answers for exact ids it holds: no listing,
no path, no query. Bind it to the store LAN address (``assets_host``).
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .assets import ASSET_ID_RE, AssetCache

log = logging.getLogger("vitrine.edge.assets")
PREFIX = "/v1/assets/"


class _Handler(BaseHTTPRequestHandler):
    cache: AssetCache
    server_version = "vitrine-assets/1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        asset_id = self.path[len(PREFIX):] if self.path.startswith(PREFIX) else ""
        data = self.cache.get(asset_id) if ASSET_ID_RE.match(asset_id) else None
        if data is None:
            self.send_error(404, "no such asset")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "public, max-age=31536000, immutable")
        self.send_header("ETag", f'"{asset_id}"')
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("assets: " + format, *args)


class AssetServer:
    def __init__(self, cache: AssetCache, host: str = "127.0.0.1", port: int = 0):
        handler = type("AssetHandler", (_Handler,), {"cache": cache})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="edge-assets",
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AssetServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
