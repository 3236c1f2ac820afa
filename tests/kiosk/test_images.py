"""Product pictures at the kiosk: named by the edge's product reply, fetched from its real
asset server over HTTP, verified, kept on disk, a placeholder (None) meanwhile."""

from __future__ import annotations

import hashlib
import threading

import pytest

from contract.asset_fetch import http_fetcher
from edge.asset_server import AssetServer
from edge.assets import AssetCache
from edge.content import add_images
from edge.demo_images import product_picture
from kiosk.images import RETRY_S, ImageCache
from tests.edge.conftest import GTIN, GTIN_2


@pytest.fixture
def edge_assets(tmp_path):
    cache = AssetCache(tmp_path / "edge-assets")
    srv = AssetServer(cache).start()
    yield cache, srv
    srv.stop()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_product_page_names_its_picture_and_the_kiosk_fetches_it(
        tmp_path, edge_assets, flow, requester):
    assets, srv = edge_assets
    picture = product_picture(GTIN, "Trail shoe", "Acme", "shoes")
    [asset_id] = add_images(requester.conn, assets, GTIN, [picture])
    flow.open_product(GTIN)
    assert flow.shopper.product["images"] == [asset_id]
    flow.open_product(GTIN_2)
    assert flow.shopper.product["images"] == []  # none at the edge: the placeholder shows

    arrived = threading.Event()
    images = ImageCache(tmp_path / "kiosk", http_fetcher(srv.url),
                        on_ready=lambda _id: arrived.set())
    assert images.path(asset_id) is None  # not on disk yet: fetching in the background
    assert arrived.wait(10)
    path = images.path(asset_id)
    assert path is not None and path.read_bytes() == picture
    # kept on disk: a kiosk restarted with the edge gone still shows it
    srv.stop()
    offline = ImageCache(tmp_path / "kiosk", http_fetcher(srv.url, timeout=0.5))
    assert offline.path(asset_id) == path


def test_missing_or_wrong_pictures_are_not_kept_and_not_asked_for_again_at_once(tmp_path):
    asked: list[str] = []
    good = b"a real picture"
    good_id = hashlib.sha256(good).hexdigest()
    wrong_id = hashlib.sha256(b"what was promised").hexdigest()
    answers = {good_id: good, wrong_id: b"something else"}

    def fetch(asset_id: str) -> bytes | None:
        asked.append(asset_id)
        return answers.get(asset_id)

    clock = FakeClock()
    images = ImageCache(tmp_path / "kiosk", fetch, clock=clock)
    missing = "0" * 64
    assert images.get_now(missing) is None and images.get_now(wrong_id) is None
    assert images.rejected == 1 and list((tmp_path / "kiosk").iterdir()) == []
    assert images.path(missing) is None and asked == [missing, wrong_id]  # not asked again
    assert images.path("../../etc/passwd") is None and images.path(None) is None
    clock.now += RETRY_S + 1
    assert images.get_now(good_id) is not None


def test_the_disk_cache_stays_within_its_budget(tmp_path):
    blobs = [bytes([i]) * 1000 for i in range(5)]
    ids = [hashlib.sha256(b).hexdigest() for b in blobs]
    by_id = dict(zip(ids, blobs, strict=True))
    images = ImageCache(tmp_path / "kiosk", by_id.get, budget_bytes=2500)
    for asset_id in ids:
        assert images.get_now(asset_id) is not None
    kept = {p.name for p in (tmp_path / "kiosk").iterdir()}
    assert ids[-1] in kept and len(kept) == 2
