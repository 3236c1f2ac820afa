"""The ops the edge answers (``contract/schemas/ops/``), registered on the router.

Each handler gets a body already checked against its request schema and a
context naming the caller; it returns the reply body (checked against the reply
schema by the router) or raises ``RequestError``. They run in the writer's
transaction, so whatever a handler writes commits before its reply is sent.
"""

from __future__ import annotations

from typing import Any

from contract.requests import RequestError

from .catalogue import Catalogue
from .requests import RequestContext, RequestRouter
from .rules import Rules
from .sessions import Sessions
from .stock_view import stock_view


def ping(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"store_id": ctx.store_id, "device_id": ctx.device_id, "edge_ts": ctx.now}


def product_lookup(catalogue: Catalogue):  # noqa: ANN201 - returns a Handler
    """``product``: the local catalogue entry, with the price every channel shows."""

    def product(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        entry = catalogue.product(body["gtin"])
        if entry is None:
            raise RequestError("not_found", f"no product {body['gtin']} in this store")
        return dict(entry)

    return product


def stock_lookup(rules: Rules):  # noqa: ANN201 - returns a Handler
    """``stock``: the same view as ``SyncClient.stock_view``, from the writer's connection."""

    def stock(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        return stock_view(ctx.conn, ctx.store_id, body["gtin"], rules, ctx.now)

    return stock


def session_end(sessions: Sessions):  # noqa: ANN201 - returns a Handler
    """``session_end``: close the caller's session; its next reads start anonymous.

    Only the caller's own session: a kiosk cannot end another device's session
    (the device id comes from the topic, not the body).
    """

    def end(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        ended, fresh = sessions.end(ctx.conn, ctx.device_id, ctx.now, body["reason"])
        return {"committed": True, "ended_session_id": ended, "session_id": fresh.session_id}

    return end


def register_ops(router: RequestRouter, catalogue: Catalogue, sessions: Sessions,
                 rules: Rules | None = None) -> None:
    router.register("ping", ping)
    router.register("product", product_lookup(catalogue))
    router.register("stock", stock_lookup(rules or Rules()))
    router.register("session_end", session_end(sessions))
