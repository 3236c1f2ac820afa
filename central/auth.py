"""Bearer-token authentication of API requests, as a decorator per endpoint."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from central import credentials
from central.credentials import ADMIN, Principal
from central.errors import Forbidden, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()


def current_principal() -> Principal:
    """Authenticate the request (admin token from config, else a stored credential)."""
    token = _bearer()
    admin_token = current_app.config["CENTRAL"].admin_token
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return ADMIN
    principal = credentials.authenticate(current_app.extensions["central_db"], token)
    if principal is None:
        raise Unauthorized("unknown or revoked token")
    return principal


def require(*kinds: str) -> Callable[[F], F]:
    """Allow callers whose principal kind is in ``kinds`` (the admin is always allowed)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal.kind != "admin" and principal.kind not in kinds:
                raise Forbidden(f"{principal.kind} credentials cannot call this endpoint")
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def require_store_scope(store_id: str) -> None:
    """A store credential may only read its own store's feeds."""
    principal: Principal = g.principal
    if principal.kind == "store" and principal.name != store_id:
        raise Forbidden("a store credential can only read its own store's feeds")
