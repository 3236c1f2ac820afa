"""edge.content_feed: pictures from central over real HTTP, checked, cached; content applied."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edge.assets import AssetCache
from edge.central_client import CentralReader
from edge.content import load_content
from edge.content_feed import apply_content, fetch_pictures
from edge.db import connect, migrate

PIC = b"\xff\xd8 picture bytes"
PIC_SHA = hashlib.sha256(PIC).hexdigest()


@pytest.fixture
def central():
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            if self.headers.get("Authorization") != "Bearer tok":
                self.send_error(401)
                return
            if self.path == "/api/v1/media/pic.jpg":
                self.send_response(200)
                self.send_header("Content-Length", str(len(PIC)))
                self.end_headers()
                self.wfile.write(PIC)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield CentralReader(f"http://127.0.0.1:{srv.server_address[1]}", "tok", 5), hits
    srv.shutdown()
    srv.server_close()


def test_pictures_are_fetched_once_checked_and_content_applied(central, tmp_path):
    reader, hits = central
    assets = AssetCache(tmp_path / "assets")
    items = [
        {"gtin": "04063511002891", "name": "Trail", "promo": "-20 %", "was_price_cents": 11999,
         "images": [{"url": "/api/v1/media/pic.jpg", "sha256": PIC_SHA},
                    {"url": "/api/v1/media/missing.jpg"},
                    {"url": "https://elsewhere.example/x.jpg"}]},
        {"gtin": "09506000134352", "name": "Gourde",
         "images": [{"url": "/api/v1/media/pic.jpg", "sha256": "0" * 64}]},  # wrong hash
        {"gtin": "04006381333931", "name": "No content"}]
    pictures = fetch_pictures(items, reader.get_bytes, assets)
    assert pictures == {"04063511002891": [PIC_SHA], "09506000134352": []}
    assert assets.get(PIC_SHA) == PIC
    db = connect(tmp_path / "edge.db")
    migrate(db)
    assert apply_content(db.conn, items, pictures, 1.0) == 2
    content = load_content(db.conn)
    assert content["04063511002891"].promo == "-20 %"
    assert content["04063511002891"].images == (PIC_SHA,)
    assert content["09506000134352"].images == () and "04006381333931" not in content
    before = len(hits)
    fetch_pictures(items[:1], reader.get_bytes, assets)  # cached by hash: not fetched again
    assert [h for h in hits[before:] if h.endswith("pic.jpg")] == []
