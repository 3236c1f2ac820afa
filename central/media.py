"""Product pictures: loaded by the back office, referenced by the catalogue, fetched by stores.

``PUT /api/v1/admin/media`` (admin token, the picture's bytes as the body) stores
a JPEG, PNG or WebP picture under its SHA-256 and answers that id; a catalogue
load then names a product's pictures by id (``"images": ["<sha256>", ...]``), and
the catalogue feed gives each store ``{"url": "/api/v1/media/<media_id>",
"sha256": ...}``. The edge downloads a picture once, checks its hash and serves
it to its screens and labels from its own cache (``edge/content_feed.py``):
screens never reach central.

Content-addressed, so a picture never changes under its id (clients may cache it
for ever) and loading the same bytes twice stores one row. A picture is checked
before it is stored: a known format by its header, at most 4096 x 4096 pixels,
at most :data:`MAX_MEDIA_BYTES`, and fully decodable (a truncated file is
refused here, not on a store's screen).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from io import BytesIO
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from PIL import Image, UnidentifiedImageError

from central.auth import require
from central.db import Database, Tx
from central.errors import BadRequest, NotFound
from contract.central_api import API_PREFIX, media_path

bp = Blueprint("media", __name__, url_prefix=API_PREFIX)

#: The edge refuses bigger downloads (``edge.central_client.CentralReader.get_bytes``).
MAX_MEDIA_BYTES = 8 * 1024 * 1024
MAX_SIDE = 4096
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def check_picture(data: bytes) -> str:
    """The picture's content type, or :class:`BadRequest` saying what is wrong with it."""
    if not data:
        raise BadRequest("media: the body must be the picture's bytes")
    if len(data) > MAX_MEDIA_BYTES:
        raise BadRequest(f"media: at most {MAX_MEDIA_BYTES} bytes")
    try:
        with Image.open(BytesIO(data)) as im:
            fmt, size = im.format, im.size
            if fmt not in FORMATS:
                raise BadRequest(f"media: {fmt} pictures are not accepted (JPEG, PNG, WebP)")
            if max(size) > MAX_SIDE:
                raise BadRequest(f"media: {size[0]}x{size[1]} is larger than "
                                 f"{MAX_SIDE}x{MAX_SIDE}")
            im.load()
    except BadRequest:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise BadRequest(f"media: not a readable picture ({exc})") from None
    except Image.DecompressionBombError as exc:
        raise BadRequest(f"media: {exc}") from None
    return FORMATS[fmt]


def store_media(db: Database, data: bytes, now: float | None = None) -> dict[str, Any]:
    content_type = check_picture(data)
    sha = hashlib.sha256(data).hexdigest()
    now = time.time() if now is None else now
    db.run(lambda tx: tx.execute(
        "INSERT INTO media (sha256, content_type, size, data, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (sha256) DO NOTHING", (sha, content_type, len(data), data, now)))
    return {"sha256": sha, "url": media_path(sha), "content_type": content_type,
            "size": len(data)}


def require_known(tx: Tx, ids: Iterable[str]) -> None:
    """Refuse a catalogue load naming a picture central does not hold."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    cond, params = tx.member("sha256", wanted)
    have = {r["sha256"] for r in tx.all(f"SELECT sha256 FROM media WHERE {cond}", params)}
    missing = [i for i in wanted if i not in have]
    if missing:
        raise BadRequest(f"catalogue: unknown picture(s) {', '.join(m[:12] for m in missing[:5])}"
                         "; load them first with PUT /api/v1/admin/media")


@bp.put("/admin/media")
@require()
def put_media() -> Any:
    data = request.get_data(cache=False)
    return jsonify(store_media(current_app.extensions["central_db"], data)), 201


@bp.get("/media/<media_id>")
@require("store")
def get_media(media_id: str) -> Response:
    db = current_app.extensions["central_db"]
    sha = media_id.lower()
    row = db.run(lambda tx: tx.one("SELECT content_type, data FROM media WHERE sha256 = ?",
                                   (sha,)), write=False)
    if row is None:
        raise NotFound(f"no picture {media_id[:64]!r}")
    return Response(bytes(row["data"]), mimetype=row["content_type"], headers={
        "Cache-Control": "private, max-age=31536000, immutable",
        "ETag": f'"{sha}"', "X-Content-Type-Options": "nosniff"})
