"""The panel on a real socket, and a browser-like HTTP client with its own cookie jar."""

from __future__ import annotations

import http.client
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from werkzeug.serving import make_server

from edge.panel import create_app

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Panel:
    """The panel app on a real socket."""

    def __init__(self, db: Path, **config: Any) -> None:
        # Event streams end by themselves after half a second: a request reads to the end.
        self.app = create_app({"DB_PATH": str(db), "SECRET_KEY": "k" * 32,
                               "PANEL_STREAM_MAX_S": 0.5, **config})
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.port = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Browser:
    """A cookie jar and the requests a browser would send (Secure cookies over http too)."""

    def __init__(self, panel: Panel, headers: dict[str, str] | None = None) -> None:
        self.panel = panel
        self.cookies: dict[str, str] = {}
        self.headers = headers or {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None
                ) -> tuple[int, http.client.HTTPMessage, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.panel.port, timeout=30)
        headers = dict(self.headers)
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
        for cookie in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Expires=Thu, 01 Jan 1970" in cookie or "Max-Age=0" in cookie or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        conn.close()
        return resp.status, resp.headers, text

    def csrf(self, path: str = "/auth/login") -> str:
        match = _CSRF.search(self.request("GET", path)[2])
        assert match, path
        return match.group(1)

    def login(self, user: tuple[str, str], next_: str | None = None
              ) -> tuple[int, http.client.HTTPMessage, str]:
        form = {"username": user[0], "password": user[1], "csrf_token": self.csrf()}
        if next_ is not None:
            form["next"] = next_
        return self.request("POST", "/auth/login", form)

    def logged_in(self) -> bool:
        return self.request("GET", "/")[0] == 200  # the dashboard: every role's page

    def logout(self) -> int:
        return self.request("POST", "/auth/logout", {"csrf_token": self.csrf("/")})[0]
