"""Admin API: store/channel credentials, and the health check load balancers poll."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from central import credentials
from central.auth import require
from central.errors import BadRequest, NotFound
from central.request_input import json_body
from contract.central_api import API_PREFIX

bp = Blueprint("admin", __name__, url_prefix=API_PREFIX)


@bp.get("/healthz")
def healthz() -> Any:
    """200 when this worker can reach its database; a load balancer drops it otherwise."""
    db = current_app.extensions["central_db"]
    db.run(lambda tx: tx.one("SELECT 1 AS ok"), write=False)
    return jsonify(status="ok", database=db.dialect)


@bp.post("/admin/credentials")
@require()
def issue_credential() -> Any:
    body = json_body()
    kind, name = (body.get("kind"), body.get("name")) if isinstance(body, dict) else (None, None)
    if not isinstance(kind, str) or not isinstance(name, str):
        raise BadRequest('body must be {"kind": "store"|"channel", "name": ...}')
    token = credentials.issue(current_app.extensions["central_db"], kind, name)
    return jsonify(kind=kind, name=name, token=token), 201


@bp.delete("/admin/credentials/<kind>/<name>")
@require()
def revoke_credential(kind: str, name: str) -> Any:
    if not credentials.revoke(current_app.extensions["central_db"], kind, name):
        raise NotFound(f"no active credential for {kind}:{name}")
    return jsonify(kind=kind, name=name, revoked=True)


@bp.get("/admin/credentials")
@require()
def list_credentials() -> Any:
    return jsonify(credentials=credentials.list_all(current_app.extensions["central_db"]))
