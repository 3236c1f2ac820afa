"""Serve a central worker over HTTP with werkzeug's threaded WSGI server.

One process = one worker with its own connection pool. Scaling out is running
more of them (on more machines) behind a load balancer; see
docs/operations.md. :class:`ServerThread` runs the same server inside a test or
benchmark process.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

log = logging.getLogger("central.server")


class ServerThread:
    """A real HTTP server for ``app`` on a background thread (port 0 = pick a free one)."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       name="central-http",
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def serve(app: Flask, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight requests and close the pool."""
    server = make_server(host, port, app, threaded=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("central serving on http://%s:%d", host, server.port)
    print(f"central listening on http://{host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.extensions["central_db"].close()
