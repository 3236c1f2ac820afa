"""Vitrine central: the single customer view fed by every store and channel.

Flask application factory in the style of the Flask tutorial: configuration
is resolved once (:mod:`central.config`), the database is opened and migrated
when the app is created, and each API area is a blueprint. Workers keep no
state besides a connection pool, so any number of them can serve behind a
load balancer in front of one PostgreSQL.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from central.config import CentralConfig, load_config
from central.db import Database, open_database
from central.errors import CentralError, ConfigError, TooManyRequests
from central.json_safe import finite
from central.migrations import migrate
from central.rate_limit import RateLimiter

log = logging.getLogger("central")


class StrictJSONProvider(DefaultJSONProvider):
    """Responses are strict JSON: a non-finite number stored long ago goes out as null."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(finite(obj), **kwargs)


def _refuse_nul() -> None:
    """A NUL in a path or query parameter is never a valid id or value: 400, not a
    database error (PostgreSQL text cannot hold NUL, so it would end in a 500)."""
    from flask import request

    from central.errors import BadRequest

    if "\x00" in request.path or any("\x00" in k or "\x00" in v
                                      for k, v in request.args.items(multi=True)):
        raise BadRequest("path and query must not contain NUL characters")


def _register_errors(app: Flask) -> None:
    app.before_request(_refuse_nul)

    @app.errorhandler(CentralError)
    def central_error(exc: CentralError) -> Any:
        resp = jsonify(error=type(exc).__name__, message=str(exc))
        if isinstance(exc, TooManyRequests):
            resp.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return resp, exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return jsonify(error=exc.name, message=exc.description), exc.code


def open_configured_database(cfg: CentralConfig) -> Database:
    """Open (and migrate) the database ``cfg`` names; used by the app and the CLI."""
    sqlite_path = cfg.sqlite_file
    if not cfg.database_url:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    db = open_database(cfg.database_url, sqlite_path, cfg.pg_pool_min, cfg.pg_pool_max)
    try:
        migrate(db)
    except Exception:
        db.close()
        raise
    return db


def create_app(test_config: Mapping[str, Any] | None = None,
               config_file: str | Path | None = None) -> Flask:
    """Build a central worker; ``test_config`` overrides every other configuration layer."""
    from central import (
        admin,
        feeds,
        ingest,
        media,
        openapi,
        order_status,
        orders,
        privacy,
        profiles,
    )

    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    app.json = StrictJSONProvider(app)
    cfg = load_config(config_file=config_file, override=test_config)
    app.config["CENTRAL"] = cfg
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    app.extensions["central_db"] = open_configured_database(cfg)
    app.extensions["central_rate_limiter"] = RateLimiter(app.extensions["central_db"])
    for module in (ingest, profiles, privacy, orders, order_status, admin, feeds, media,
                   openapi):
        app.register_blueprint(module.bp)
    _register_errors(app)
    log.info("central ready on %s", app.extensions["central_db"].dialect)
    return app


__all__ = ["create_app", "CentralConfig", "ConfigError"]
