"""Serve the panel from inside the edge node: cheroot, over HTTPS, on a background thread.

Why cheroot: it is a production, thread-pooled, pure-Python WSGI server with TLS
built in (``BuiltinSSLAdapter``, the standard library's ``ssl``) that runs
*inside* the edge process, on a thread, next to the node whose live counters the
panel shows. gunicorn forks worker processes (no shared node, no in-process
start/stop for tests) and waitress has no TLS, so it would need a proxy in front
of it on every edge box. Each open live page holds one worker thread for its
event stream, hence ``panel_threads``.

HTTPS uses a certificate from the store CA that already signs the broker's TLS
listener (``vitrine tls panel-cert``); tablets that trust the store CA for
MQTT trust the panel too. Plain HTTP is only allowed on a loopback address.

The panel is a side show: if its port is taken the node logs a warning and goes
on ingesting, because a store that cannot see its dashboard is better than a
store whose taps are lost.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import sys
import threading
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from . import create_app

log = logging.getLogger("vitrine.edge.panel")


class PanelConfigError(ValueError):
    """A panel setting that would expose it unsafely (plain HTTP off loopback)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_address() -> str:
    """This host's address on the store network (no packet is sent), for the printed URL."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def _error_log(msg: str = "", level: int = 20, traceback: bool = False) -> None:
    """cheroot's errors into our log: a tablet dropping a TLS connection is not news."""
    exc = sys.exc_info()[1]
    if isinstance(exc, ssl.SSLError | ConnectionError) or "socket.error" in msg:
        log.debug("panel connection: %s %s", msg, exc)
        return
    log.log(max(level, logging.WARNING) if traceback else level, "panel server: %s", msg,
            exc_info=traceback)


class PanelServer:
    def __init__(self, node: Any):
        cfg = node.cfg
        tls = bool(cfg.panel_tls_cert and cfg.panel_tls_key)
        if not tls and not is_loopback(cfg.panel_host):
            raise PanelConfigError(
                f"panel_host {cfg.panel_host} is reachable from the network: set panel_tls_cert"
                " and panel_tls_key (vitrine tls panel-cert) or bind to 127.0.0.1")
        self.app = create_app({"SECRET_KEY": cfg.panel_secret_key or None}, node=node)
        self._server = wsgi.Server((cfg.panel_host, cfg.panel_port), self.app,
                                   numthreads=cfg.panel_threads, server_name="vitrine-panel",
                                   timeout=10, shutdown_timeout=2)
        self._server.error_log = _error_log  # type: ignore[method-assign]
        if tls:
            self._server.ssl_adapter = BuiltinSSLAdapter(str(cfg.panel_tls_cert),
                                                         str(cfg.panel_tls_key))
        self._server.prepare()  # binds now: a taken port raises OSError here
        host, port = self._server.bind_addr[:2]
        if host in ("0.0.0.0", "::"):
            host = lan_address()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve, name="edge-panel",
                                        daemon=True)

    def start(self) -> PanelServer:
        self._thread.start()
        log.info("panel on %s", self.url)
        return self

    def stop(self) -> None:
        """End open event streams, stop accepting, release the port."""
        self.app.extensions["vitrine_panel_stopping"].set()
        self._server.stop()
        self._thread.join(5)


def start_panel(node: Any) -> PanelServer | None:
    """Start the panel for ``node``, or log why not and return ``None``."""
    try:
        return PanelServer(node).start()
    except (OSError, PanelConfigError) as exc:
        log.warning("panel not started on %s:%s: %s", node.cfg.panel_host,
                    node.cfg.panel_port, exc)
        return None
