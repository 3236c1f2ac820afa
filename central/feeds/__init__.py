"""Feeds from central to the store edges: catalogue, prices and promotions, stock.

Stores read them with their own credential (the same bearer token they
forward events with)::

    GET /api/v1/stores/<store>/feeds/<catalogue|prices|stock>?since=<version>&limit=<n>

and the back office loads them with the admin token::

    PUT /api/v1/admin/feeds/<catalogue|prices|stock>
        {"items": [...], "delete": [...]}

or ``python -m central.feeds load <feed> <file.json>`` on a host that reaches
the database. Storage and versioning: :mod:`central.feeds.model`.
"""

from __future__ import annotations

from central.feeds.api import bp

__all__ = ["bp"]
