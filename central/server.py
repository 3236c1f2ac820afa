"""Serve central over HTTP: gunicorn in production, werkzeug for development and tests.

``vitrine central serve`` runs gunicorn (:func:`serve_gunicorn`): a master
process that binds the port and forks ``workers`` processes, each building its
own app (so its own connection pool, never shared across a fork) and serving
``threads`` requests at once; a worker that dies or hangs past ``timeout`` is
replaced, and SIGTERM finishes the requests in flight. The configuration and
migrations are checked in the master first, so a bad setting fails the start,
not every worker. Scaling out is more workers per host and more hosts behind a
load balancer; see docs/operations.md.

``--server werkzeug`` (:func:`serve`) is one process with werkzeug's threaded
development server; :class:`ServerThread` runs that server inside a test or
benchmark process.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

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


def serve_gunicorn(make_app: Callable[[], Flask], host: str, port: int, workers: int,
                   threads: int, options: Mapping[str, Any] | None = None) -> None:
    """Run gunicorn until SIGTERM/SIGINT; ``make_app`` is called once in every worker."""
    from gunicorn.app.base import BaseApplication

    class CentralApplication(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "workers": workers, "threads": threads,
                "worker_class": "gthread" if threads > 1 else "sync",
                "timeout": 60, "graceful_timeout": 30, "keepalive": 5,
                # A request line or header beyond these is refused with a 4xx.
                "limit_request_line": 8190, "limit_request_fields": 100,
                "errorlog": "-", "loglevel": "info", "proc_name": "vitrine-central",
                "when_ready": _when_ready, "worker_exit": _worker_exit,
                **(options or {}),
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return make_app()

    CentralApplication().run()


def _when_ready(server: Any) -> None:
    for listener in server.LISTENERS:
        address = listener.sock.getsockname()
        print(f"central listening on http://{address[0]}:{address[1]} "
              f"({server.num_workers} gunicorn workers)", flush=True)


def _worker_exit(server: Any, worker: Any) -> None:
    """Close the worker's connection pool when it stops (restart, scale-down, SIGTERM)."""
    app = getattr(worker, "wsgi", None)
    db = getattr(app, "extensions", {}).get("central_db") if app is not None else None
    if db is not None:
        db.close()
