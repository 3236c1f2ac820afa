"""edge.assets: content-addressed, bounded, crash-safe, and honest about what it holds."""

from __future__ import annotations

import pytest
from PIL import Image

from edge.assets import AssetCache, AssetError, asset_id_of
from edge.demo_images import product_picture


def test_put_get_is_content_addressed_and_idempotent(tmp_path):
    cache = AssetCache(tmp_path, budget_bytes=10_000)
    a = cache.put(b"x" * 100)
    assert a == asset_id_of(b"x" * 100) and cache.put(b"x" * 100) == a
    assert cache.get(a) == b"x" * 100 and len(cache) == 1 and cache.used_bytes == 100
    assert cache.get("0" * 64) is None


def test_budget_evicts_least_recently_used_but_never_pinned(tmp_path):
    cache = AssetCache(tmp_path, budget_bytes=3_000)
    a, b, c = (cache.put(bytes([i]) * 1_000) for i in range(3))
    cache.pin([a])
    assert cache.get(b) is not None  # b used: c is now the LRU unpinned one
    d = cache.put(b"d" * 1_000)
    assert a in cache and b in cache and d in cache and c not in cache
    assert cache.used_bytes <= 3_000 and cache.evicted_total == 1
    assert not (tmp_path / c).exists()
    cache.pin([a, b, d])
    with pytest.raises(AssetError, match="full"):
        cache.put(b"e" * 1_000)


def test_reopened_cache_knows_its_files_and_drops_damaged_ones(tmp_path):
    cache = AssetCache(tmp_path, budget_bytes=10_000)
    a = cache.put(b"hello")
    (tmp_path / f"{a}.123.tmp").write_bytes(b"half")  # crash mid-write
    again = AssetCache(tmp_path, budget_bytes=10_000)
    assert a in again and not list(tmp_path.glob("*.tmp"))
    (tmp_path / a).write_bytes(b"hellO")  # bit rot
    assert again.get(a) is None and a not in again


@pytest.mark.parametrize("bad", ["../etc/passwd", "A" * 64, "", "0" * 63])
def test_ids_that_are_not_sha256_are_refused(tmp_path, bad):
    with pytest.raises(AssetError):
        AssetCache(tmp_path).path(bad)


def test_demo_pictures_are_deterministic_jpegs():
    one = product_picture("04063511002891", "Trail Runner 2", "Kestrel", "running shoes")
    assert one == product_picture("04063511002891", "Trail Runner 2", "Kestrel", "running shoes")
    assert one != product_picture("04063511002892", "Trail Runner 2", "Kestrel", "running shoes")
    from io import BytesIO
    im = Image.open(BytesIO(one))
    assert im.format == "JPEG" and im.size == (800, 800)
