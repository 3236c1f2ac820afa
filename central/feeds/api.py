"""HTTP endpoints of the feeds: store reads (store token), back-office loads (admin token)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, jsonify

from central.auth import require, require_store_scope
from central.db import Database
from central.errors import NotFound
from central.feeds import model
from central.feeds.validation import parse_load
from central.media import require_known
from central.request_input import MAX_QUERY_INT, int_arg, json_body
from contract.central_api import API_PREFIX

bp = Blueprint("feeds", __name__, url_prefix=API_PREFIX)

#: Largest page; an edge pages through a bigger catalogue and applies it at once.
MAX_PAGE = 5000


def _spec(feed: str) -> model.FeedSpec:
    spec = model.FEEDS.get(feed)
    if spec is None:
        raise NotFound(f"no feed {feed!r} (one of {', '.join(model.FEEDS)})")
    return spec


def load(db: Database, feed: str, body: Any, now: float | None = None) -> int:
    """Validate and store one load (all or nothing); return the feed's new version."""
    spec = _spec(feed)
    now = time.time() if now is None else now
    upserts, deletes = parse_load(feed, body, now)

    def work(tx: Any) -> int:
        if spec is model.CATALOGUE:
            require_known(tx, model.content_images(upserts))
        return model.write(tx, spec, upserts, deletes, now)

    return db.run(work)


@bp.get("/stores/<store_id>/feeds/<feed>")
@require("store")
def read_feed(store_id: str, feed: str) -> Any:
    require_store_scope(store_id)
    spec = _spec(feed)
    since = int_arg("since", 0, minimum=-MAX_QUERY_INT)
    limit = int_arg("limit", MAX_PAGE, 1, MAX_PAGE)
    db = current_app.extensions["central_db"]
    return jsonify(db.run(lambda tx: model.read(tx, spec, store_id, since, limit), write=False))


@bp.put("/admin/feeds/<feed>")
@require()
def load_feed(feed: str) -> Any:
    body = json_body()
    version = load(current_app.extensions["central_db"], feed, body)
    return jsonify(feed=feed, version=version)
