"""The kiosk's requests to the edge: which ops, and the refusals only they can give.

Each op is one file ``schemas/ops/{op}.json`` in the device kit's format (who may
ask, whether it commits, request and reply schemas), loaded with the kit's own
ops into ``contract.requests.REQUEST_OPS``; refusals are the kit's
``RequestError`` with a code from ``contract.requests.ERROR_CODES``, which
includes :data:`KIOSK_ERRORS`.

Who the shopper is never comes from the kiosk: profile and order ops name the
*session* the edge opened when the shopper identified at this kiosk, and the
edge checks that the session is this device's current one. Amounts never come
from the kiosk either: an order names products and quantities, the edge prices
them.
"""

from __future__ import annotations

#: The kiosk's ops (files under ``contract/schemas/ops/``).
KIOSK_OP_NAMES = ("kiosk_search", "kiosk_categories", "kiosk_product", "kiosk_profile",
                  "kiosk_consent", "kiosk_wishlist_add", "order_place", "order_pay",
                  "order_status")

#: Error codes only kiosk ops answer with, and what each means to the kiosk.
KIOSK_ERRORS: dict[str, str] = {
    "session_ended": "the shopper's session is over (\"I'm done\", timeout, someone else "
                     "identified): forget the shopper on screen; do not retry",
    "no_customer": "the session has no identified customer; do not retry",
    "not_for_sale": "a product has no price at this store; do not retry",
    "insufficient_points": "more points asked to spend than the customer has; do not retry",
    "invalid_state": "the order is not in a state that allows this change; do not retry",
}
