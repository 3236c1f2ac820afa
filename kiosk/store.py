"""The kiosk's side of its requests to the edge: one method per op of contract/kiosk_ops.py.

It wraps whatever sends a request to the edge, in practice the device kit's
``DeviceSession.request(op, body, timeout=..., request_id=...)``, and turns its
failures into the two things the screens distinguish:

* :class:`StoreRefused`: the edge answered with a structured error
  (``code`` from ``contract.kiosk_ops.KIOSK_ERRORS``);
* :class:`StoreUnavailable`: no answer (timeout, broker down, not connected).
  The kiosk says so plainly and takes no money.
"""

from __future__ import annotations

from typing import Any, Protocol

from contract.requests import REQUEST_OPS, RequestError


class Requester(Protocol):
    def request(self, op: str, body: dict[str, Any], *, timeout: float = 5.0,
                request_id: str | None = None) -> dict[str, Any]: ...


class StoreError(Exception):
    """A request to the edge did not succeed."""


class StoreRefused(StoreError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class StoreUnavailable(StoreError):
    """The edge did not answer: nothing happened as far as the kiosk can tell."""


class StoreClient:
    def __init__(self, requester: Requester, *, timeout_s: float = 3.0) -> None:
        self.requester = requester
        self.timeout_s = timeout_s

    def call(self, op: str, body: dict[str, Any], *, request_id: str | None = None
             ) -> dict[str, Any]:
        REQUEST_OPS[op].check_request(body)  # a kiosk bug shows here, not as an edge refusal
        if getattr(self.requester, "edge_online", None) is False:
            # The edge's retained state says it is down: do not make the shopper wait.
            raise StoreUnavailable(f"{op}: the edge is offline")
        try:
            return self.requester.request(op, body, timeout=self.timeout_s,
                                          request_id=request_id)
        except RequestError as exc:  # the edge answered "no" (or "internal": it failed)
            if exc.code == "internal":
                raise StoreUnavailable(f"{op}: {exc.message}") from None
            raise StoreRefused(exc.code, exc.message) from None
        except (TimeoutError, OSError, RuntimeError) as exc:
            # RequestTimeout, broker gone, session closed: no answer is not a "no".
            raise StoreUnavailable(f"{op}: {type(exc).__name__}: {exc}") from None

    def search(self, q: str, category: str | None = None, limit: int = 12
               ) -> list[dict[str, Any]]:
        return self.call("kiosk_search", {"q": q[:100], "category": category,
                                          "limit": limit})["results"]

    def categories(self) -> list[dict[str, Any]]:
        return self.call("kiosk_categories", {})["categories"]

    def product(self, gtin: str) -> dict[str, Any]:
        return self.call("kiosk_product", {"gtin": gtin})

    def stock(self, gtin: str) -> dict[str, Any]:
        """The kit's ``stock`` op: here, other stores, the web warehouse (the store picker)."""
        return self.call("stock", {"gtin": gtin})

    def profile(self, session_id: str) -> dict[str, Any]:
        return self.call("kiosk_profile", {"session_id": session_id})

    def consent(self, session_id: str, granted: bool) -> dict[str, Any]:
        return self.call("kiosk_consent", {"session_id": session_id, "granted": granted})

    def wishlist_add(self, session_id: str, gtin: str) -> dict[str, Any]:
        return self.call("kiosk_wishlist_add", {"session_id": session_id, "gtin": gtin})

    def place_order(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("order_place", body, request_id=body["client_order_id"])

    def pay_order(self, order_id: str, payment_ref: str, outcome: str) -> dict[str, Any]:
        return self.call("order_pay", {"order_id": order_id, "payment_ref": payment_ref,
                                             "outcome": outcome})

    def order_status(self, order_id: str) -> dict[str, Any]:
        return self.call("order_status", {"order_id": order_id})

    def end_session(self, reason: str) -> dict[str, Any]:
        """The device kit's ``session_end``: the edge closes this kiosk's current session."""
        return self.call("session_end", {"reason": reason})
