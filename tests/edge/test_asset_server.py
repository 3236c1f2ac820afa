"""edge.asset_server + signage.fetch: exact bytes by id over real HTTP, nothing else."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from edge.asset_server import AssetServer
from edge.assets import AssetCache
from signage.cache import ScreenCache
from signage.fetch import http_fetcher


@pytest.fixture
def server(tmp_path):
    cache = AssetCache(tmp_path / "edge-assets")
    srv = AssetServer(cache).start()
    yield cache, srv
    srv.stop()


def test_screen_fetches_and_verifies_an_asset(server, tmp_path):
    cache, srv = server
    asset_id = cache.put(b"\xff\xd8 a jpeg, honestly")
    fetch = http_fetcher(srv.url)
    data = fetch(asset_id)
    assert data == b"\xff\xd8 a jpeg, honestly"
    screen = ScreenCache(tmp_path / "screen")
    assert screen.put_asset(asset_id, data) and screen.has_asset(asset_id)


@pytest.mark.parametrize("path", ["/v1/assets/" + "0" * 64, "/v1/assets/../edge.db", "/",
                                  "/v1/assets/", "/v1/assets/%2e%2e"])
def test_only_exact_held_ids_are_served(server, path):
    _cache, srv = server
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(srv.url + path, timeout=5)
    assert err.value.code == 404


def test_unreachable_edge_is_none_not_an_exception():
    assert http_fetcher("http://127.0.0.1:9", timeout=0.5)("0" * 64) is None
