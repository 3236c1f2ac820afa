"""The paths the edge calls (contract/central_api.py) are routes central serves."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from central import create_app
from contract.central_api import (
    EVENTS_PATH,
    ORDERS_PATH,
    customer_path,
    erasures_path,
    feed_path,
    media_path,
    store_points_path,
)

from .conftest import ADMIN_TOKEN


@pytest.mark.parametrize("method, url", [
    ("POST", EVENTS_PATH),
    ("POST", ORDERS_PATH),
    ("GET", feed_path("store-001", "catalogue", 0, 5000)),
    ("GET", feed_path("store-001", "stock", 42, 10)),
    ("GET", erasures_path("store-001", 7, 1000)),
    ("GET", customer_path("C0012345634")),
    ("GET", store_points_path("store-001", "C0012345634")),
    ("GET", media_path("ab" * 32)),
])
def test_edge_paths_are_central_routes(tmp_path: Path, method: str, url: str) -> None:
    app = create_app({"admin_token": ADMIN_TOKEN, "sqlite_path": str(tmp_path / "c.db")})
    adapter = app.url_map.bind("central.test")
    parts = urlsplit(url)
    endpoint, args = adapter.match(parts.path, method=method)
    assert endpoint and parts.path.startswith("/api/v1/")
    if "feeds" in parts.path:
        assert args == {"store_id": "store-001", "feed": parts.path.rsplit("/", 1)[1]}


def test_a_wrong_path_would_be_caught(tmp_path: Path) -> None:
    app = create_app({"admin_token": ADMIN_TOKEN, "sqlite_path": str(tmp_path / "c.db")})
    adapter = app.url_map.bind("central.test")
    with pytest.raises(NotFound):
        adapter.match("/api/v2/events", method="POST")
    with pytest.raises(MethodNotAllowed):
        adapter.match(EVENTS_PATH, method="GET")
