"""The HTTP paths the edge calls on central: one definition for both sides.

Central's blueprints mount under :data:`API_PREFIX` and declare these routes
(``central/ingest.py``, ``central/orders.py``, ``central/feeds/api.py``,
``central/privacy.py``, ``central/media.py``); the edge builds its URLs with the functions below.
``tests/central/test_api_paths.py`` checks that every path built here is a route
central serves, so the two cannot drift apart.
"""

from __future__ import annotations

from urllib.parse import quote

API_PREFIX = "/api/v1"
#: ``POST``: a batch of events from a store's outbox.
EVENTS_PATH = f"{API_PREFIX}/events"
#: ``POST``: one order (click & collect, home delivery).
ORDERS_PATH = f"{API_PREFIX}/orders"


def feed_path(store_id: str, feed: str, since: int, limit: int) -> str:
    """``GET``: the changes of ``feed`` (catalogue, prices, stock) after version ``since``."""
    return (f"{API_PREFIX}/stores/{quote(store_id, safe='')}/feeds/{quote(feed, safe='')}"
            f"?since={int(since)}&limit={int(limit)}")


def erasures_path(store_id: str, since: int, limit: int) -> str:
    """``GET``: erasure orders for this store after sequence ``since``."""
    return f"{API_PREFIX}/stores/{quote(store_id, safe='')}/erasures?since={int(since)}" \
           f"&limit={int(limit)}"


def customer_path(customer_id: str) -> str:
    """``GET``: the single customer view (the panel's clienteling, with the store token)."""
    return f"{API_PREFIX}/customers/{quote(customer_id, safe='')}"


def order_path(order_id: str) -> str:
    """``GET``: one order, its status and its history (a store: only orders it fulfils)."""
    return f"{API_PREFIX}/orders/{quote(order_id, safe='')}"


def order_status_path(order_id: str) -> str:
    """``POST``: move an order along its lifecycle (``contract/order_lifecycle.py``)."""
    return f"{order_path(order_id)}/status"


def order_changes_path(store_id: str, since: int, limit: int) -> str:
    """``GET``: this store's order changes (new orders, status changes) after seq ``since``."""
    return f"{API_PREFIX}/stores/{quote(store_id, safe='')}/order-changes?since={int(since)}" \
           f"&limit={int(limit)}"


def store_points_path(store_id: str, customer_id: str) -> str:
    """``GET``: a member's points balance, for the store they just showed their card in."""
    return (f"{API_PREFIX}/stores/{quote(store_id, safe='')}/customers/"
            f"{quote(customer_id, safe='')}/points")


def media_path(sha256: str) -> str:
    """``GET``: a product picture by its SHA-256 (named by the catalogue feed)."""
    return f"{API_PREFIX}/media/{quote(sha256, safe='')}"
