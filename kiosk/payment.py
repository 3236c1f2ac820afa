"""The payment step behind one small interface, and a simulated provider for tests and demo.

A real terminal driver implements :class:`PaymentProvider`. The one rule that
keeps a shopper from being charged twice: every charge carries an idempotency
key (the edge's order id), and asking again with the same key returns the first
charge instead of making a new one. So a timeout is retried with the same key,
and a double tap on "Pay" is the same charge.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class PaymentError(Exception):
    """The charge did not go through."""


class PaymentDeclined(PaymentError):
    """The provider refused: nothing was charged."""


class PaymentTimeout(PaymentError):
    """No answer in time: the charge may or may not exist; retry with the same key."""


@dataclass(frozen=True, slots=True)
class Charge:
    ref: str
    key: str
    amount_cents: int
    currency: str


class PaymentProvider(Protocol):
    def charge(self, key: str, amount_cents: int, currency: str) -> Charge:
        """Charge once per ``key``; raise :class:`PaymentDeclined` or :class:`PaymentTimeout`."""
        ...


#: What the simulated terminal does on each successive call.
OUTCOMES = ("approved", "declined", "timeout", "timeout_after_charge")


class SimulatedPayments:
    """A terminal that follows a script of outcomes, then approves; idempotent per key.

    ``timeout_after_charge`` is the nasty case: the money moved but the answer
    was lost. A retry with the same key must find that charge, not make another.
    """

    def __init__(self, script: Iterable[str] = ()) -> None:
        self.script = list(script)
        bad = [o for o in self.script if o not in OUTCOMES]
        if bad:
            raise ValueError(f"unknown outcomes {bad}: use {OUTCOMES}")
        self.charges: dict[str, Charge] = {}
        self.calls = 0
        self._lock = threading.Lock()

    def charge(self, key: str, amount_cents: int, currency: str) -> Charge:
        with self._lock:
            self.calls += 1
            if key in self.charges:
                return self.charges[key]
            outcome = self.script.pop(0) if self.script else "approved"
            if outcome == "declined":
                raise PaymentDeclined("card declined")
            if outcome == "timeout":
                raise PaymentTimeout("no answer from the terminal")
            charge = Charge(f"pay-{uuid.uuid4().hex[:12]}", key, amount_cents, currency)
            self.charges[key] = charge
            if outcome == "timeout_after_charge":
                raise PaymentTimeout("answer lost after charging")
            return charge

    @property
    def total_charged(self) -> int:
        return sum(c.amount_cents for c in self.charges.values())
