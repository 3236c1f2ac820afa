"""Fetch an asset from the edge's asset server: the kit's client (``contract/asset_fetch.py``),
shared with the kiosk."""

from contract.asset_fetch import MAX_ASSET_BYTES, http_fetcher

__all__ = ["MAX_ASSET_BYTES", "http_fetcher"]
