"""central.media and the catalogue's content: pictures in, promotion and pictures out to stores.

HTTP tests run on SQLite and PostgreSQL (the ``central`` fixture); the picture check is
property-tested on arbitrary bytes.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from io import BytesIO

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from central.credentials import issue
from central.errors import BadRequest
from central.media import check_picture
from tests.central.conftest import STORE, Central

GTIN = "04063511002891"
GTIN_2 = "09506000134352"


def jpeg(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def raw(central: Central, method: str, path: str, token: str | None,
        data: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(central.url + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_pictures_are_stored_by_hash_and_served_to_stores_only(central: Central):
    pic = jpeg()
    status, body, _ = raw(central, "PUT", "/api/v1/admin/media", central.admin, pic)
    assert status == 201, body
    sha = hashlib.sha256(pic).hexdigest()
    assert raw(central, "PUT", "/api/v1/admin/media", central.admin, pic)[0] == 201  # same id
    assert central.count("SELECT count(*) AS n FROM media") == 1
    status, body, headers = raw(central, "GET", f"/api/v1/media/{sha}", central.store_token)
    assert (status, body, headers["Content-Type"]) == (200, pic, "image/jpeg")
    assert headers["X-Content-Type-Options"] == "nosniff"
    web = issue(central.db, "channel", "web")
    assert raw(central, "GET", f"/api/v1/media/{sha}", web)[0] == 403
    assert raw(central, "GET", f"/api/v1/media/{sha}", None)[0] == 401
    assert raw(central, "PUT", "/api/v1/admin/media", central.store_token, pic)[0] == 403
    assert raw(central, "GET", f"/api/v1/media/{'0' * 64}", central.store_token)[0] == 404


def test_bad_pictures_are_refused_with_a_reason(central: Central):
    gif = BytesIO()
    Image.new("P", (8, 8)).save(gif, "GIF")
    for data, why in ((b"", "bytes"), (b"<svg onload=alert(1)>", "readable"),
                      (jpeg()[:200], "readable"), (gif.getvalue(), "GIF"),
                      (jpeg((5000, 10)), "larger")):
        status, body, _ = raw(central, "PUT", "/api/v1/admin/media", central.admin, data)
        assert status == 400 and why.encode() in body, (why, body)
    assert central.count("SELECT count(*) AS n FROM media") == 0


def test_catalogue_feed_carries_promotion_and_pictures_when_given(central: Central):
    pic = jpeg()
    sha = hashlib.sha256(pic).hexdigest()
    unknown = central.api("PUT", "/api/v1/admin/feeds/catalogue", {"items": [
        {"gtin": GTIN, "name": "Shoe", "images": [sha]}]})
    assert unknown[0] == 400 and "unknown picture" in unknown[1]["message"]
    raw(central, "PUT", "/api/v1/admin/media", central.admin, pic)
    status, _ = central.api("PUT", "/api/v1/admin/feeds/catalogue", {"items": [
        {"gtin": GTIN, "name": "Shoe", "promo": "-20 %", "was_price_cents": 9999,
         "images": [sha, sha]},
        {"gtin": GTIN_2, "name": "Bottle"}]})
    assert status == 200
    status, feed = central.api("GET", f"/api/v1/stores/{STORE}/feeds/catalogue?since=0",
                               token=central.store_token)
    items = {i["gtin"]: i for i in feed["items"]}
    assert items[GTIN]["promo"] == "-20 %" and items[GTIN]["was_price_cents"] == 9999
    assert items[GTIN]["images"] == [{"url": f"/api/v1/media/{sha}", "sha256": sha}]
    assert "content" not in items[GTIN]
    # no content keys in the load: the feed says nothing, a store keeps its own content
    assert not {"promo", "was_price_cents", "images"} & items[GTIN_2].keys()
    # an explicit null ends the promotion
    central.api("PUT", "/api/v1/admin/feeds/catalogue", {"items": [
        {"gtin": GTIN, "name": "Shoe", "promo": None}]})
    _, delta = central.api("GET", f"/api/v1/stores/{STORE}/feeds/catalogue?since="
                           f"{feed['version']}", token=central.store_token)
    (item,) = delta["items"]
    assert (item["promo"], item["was_price_cents"], item["images"]) == (None, None, [])
    bad = central.api("PUT", "/api/v1/admin/feeds/catalogue", {"items": [
        {"gtin": GTIN, "name": "Shoe", "promo": "x" * 201}]})
    assert bad[0] == 400


@given(st.binary(max_size=2048))
@settings(max_examples=200)
def test_any_bytes_are_a_picture_or_a_clear_refusal(data: bytes) -> None:
    try:
        kind = check_picture(data)
    except BadRequest as exc:
        assert str(exc).startswith("media:")
    else:
        assert kind in ("image/jpeg", "image/png", "image/webp")


@given(st.integers(0, 600), st.integers(1, 2000))
@settings(max_examples=30)
def test_a_damaged_jpeg_is_refused_never_crashes(cut: int, flip: int) -> None:
    data = bytearray(jpeg((40, 30)))
    data[flip % len(data)] ^= 0xFF
    try:
        kind = check_picture(bytes(data[:len(data) - cut]))
    except BadRequest as exc:
        assert str(exc).startswith("media:")
    else:
        assert kind == "image/jpeg"  # a flipped bit in pixel data still decodes
