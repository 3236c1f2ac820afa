"""An order's lifecycle: the states, the moves allowed between them, one home for both sides.

Central records an order's status and every change to it (``central/order_status.py``);
the store's edge keeps a copy and moves its own orders along (kiosk payment, the
panel's pickup queue: ``edge/order_status.py``). Both refuse the same moves because
both ask :func:`check_move` here::

    placed ──> paid ──> preparing ──> ready ──> collected
      │          │          │           │
      └──────────┴──────────┴───────────┴──> cancelled

Every move goes one step forward, or to ``cancelled`` from any state that is not
final; ``collected`` and ``cancelled`` are final. Moving to the state an order is
already in is not a move: central answers it as a duplicate (an idempotent retry).

Because every move goes forward, the two copies merge without a clock:
:func:`is_newer` tells the edge whether a status central reports is ahead of its
own (apply it) or behind (an echo of a change the store made itself: ignore it).
The edge's own ``payment_declined`` (a kiosk payment refused, the order still
waiting for a payment) is central's ``placed``.
"""

from __future__ import annotations

#: Every status, in lifecycle order (``cancelled`` last: it may follow any open one).
STATUSES = ("placed", "paid", "preparing", "ready", "collected", "cancelled")
FINAL = ("collected", "cancelled")
#: status -> the statuses it may move to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "placed": ("paid", "cancelled"),
    "paid": ("preparing", "cancelled"),
    "preparing": ("ready", "cancelled"),
    "ready": ("collected", "cancelled"),
    "collected": (),
    "cancelled": (),
}
#: Edge-only statuses and the lifecycle status they stand for.
EDGE_ALIASES = {"payment_declined": "placed"}


class TransitionError(ValueError):
    """A move the lifecycle does not allow; ``str()`` says why and what is allowed."""


def lifecycle_status(status: str) -> str:
    """The lifecycle status an edge status stands for (``payment_declined`` -> ``placed``)."""
    return EDGE_ALIASES.get(status, status)


def check_move(current: str, target: str) -> bool:
    """True if ``current -> target`` is a move, False if the order is already there;
    raise :class:`TransitionError` for a move the lifecycle does not allow."""
    current = lifecycle_status(current)
    if target not in STATUSES:
        raise TransitionError(f"unknown status {target!r}; one of {', '.join(STATUSES)}")
    if current == target:
        return False
    allowed = TRANSITIONS.get(current)
    if allowed is None:
        raise TransitionError(f"unknown current status {current!r}")
    if target not in allowed:
        nxt = ", ".join(allowed) or "nothing (final)"
        raise TransitionError(f"an order that is {current} cannot become {target}; "
                              f"allowed: {nxt}")
    return True


def is_newer(reported: str, local: str) -> bool:
    """Is ``reported`` (central's) ahead of ``local`` (the edge's) in the lifecycle?

    A final local status is never overtaken (a collected order stays collected
    at the store even if central cancelled it meanwhile: central refuses the
    store's "collected", which the edge logs for a person to settle).
    """
    local = lifecycle_status(local)
    if reported not in STATUSES or local in FINAL or reported == local:
        return False
    if reported == "cancelled":
        return True
    return STATUSES.index(reported) > STATUSES.index(local)
