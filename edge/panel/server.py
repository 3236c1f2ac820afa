"""Serve the panel from inside the edge node, on a background werkzeug thread.

The panel is a side show: if its port is taken the node logs a warning and goes
on ingesting, because a store that cannot see its dashboard is better than a
store whose taps are lost.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from . import create_app

log = logging.getLogger("vitrine.edge.panel")


class PanelServer:
    def __init__(self, node: Any):
        cfg = node.cfg
        app = create_app({"SECRET_KEY": cfg.panel_secret_key or None}, node=node)
        # Bind ourselves: werkzeug's own bind calls sys.exit(1) when the port is taken.
        family = socket.AF_INET6 if ":" in cfg.panel_host else socket.AF_INET
        with socket.create_server((cfg.panel_host, cfg.panel_port), family=family) as sock:
            self._server: BaseWSGIServer = make_server(cfg.panel_host, cfg.panel_port, app,
                                                       threaded=True, fd=sock.fileno())
        host, port = self._server.server_address[:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, name="edge-panel",
                                        daemon=True)

    def start(self) -> PanelServer:
        self._thread.start()
        log.info("panel on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop accepting, let the serving loop return, release the port."""
        self._server.shutdown()
        self._thread.join(5)
        self._server.server_close()


def start_panel(node: Any) -> PanelServer | None:
    """Start the panel for ``node``, or log why not and return ``None``."""
    try:
        return PanelServer(node).start()
    except OSError as exc:
        log.warning("panel not started on %s:%s: %s", node.cfg.panel_host,
                    node.cfg.panel_port, exc)
        return None
