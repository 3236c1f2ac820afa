"""Fault injection for the simulated fleet: what goes wrong in a real store, on purpose.

The edge must survive misbehaving devices and hostile shoppers, so the demo and
the tests produce them deliberately, with configurable probabilities:

* infrastructure: network cuts (the will fires, the device buffers and resends),
  duplicate sends (same msg_id twice), garbage payloads (non-JSON, wrong types,
  oversize), device clocks skewed by minutes;
* identity: forged tokens (valid format, signed with the wrong key), expired
  tokens, replayed app tokens (a screenshot shown again) and cloned cards (a
  valid card token read from another tag's UID).

All random choices come from one seeded RNG consumed in the fleet's
deterministic event order, so a seed reproduces the same faults.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from dataclasses import dataclass, fields, replace

from contract.loyalty import issue_token

#: Card tokens live for years (the card is written once); app tokens ~2 minutes.
CARD_TTL_S = 2 * 365 * 86400
APP_TTL_S = 120


@dataclass(frozen=True)
class FaultConfig:
    """Fault probabilities. Rates are per event unless stated otherwise."""

    #: Network cuts per device per real minute (Poisson).
    disconnects_per_min: float = 0.0
    #: Outage length range, real seconds.
    offline_s: tuple[float, float] = (2.0, 8.0)
    #: Chance a device sends a message twice with the same msg_id.
    duplicate_rate: float = 0.0
    #: Chance a device emits an invalid payload after a shopper event.
    garbage_rate: float = 0.0
    #: Share of devices whose clock is off, and the skew magnitude range (seconds, +/-).
    skewed_fraction: float = 0.0
    skew_s: tuple[float, float] = (60.0, 600.0)
    #: Per identification: token signed with a key the retailer does not hold.
    forged_rate: float = 0.0
    #: Per identification: token past its expiry.
    expired_rate: float = 0.0
    #: Per app identification: show an app token that was already used.
    replay_rate: float = 0.0
    #: Per card identification: a copy of a real card's token on another tag.
    cloned_rate: float = 0.0


PRESETS: dict[str, FaultConfig] = {
    "none": FaultConfig(),
    "default": FaultConfig(disconnects_per_min=0.1, duplicate_rate=0.02, garbage_rate=0.01,
                           skewed_fraction=0.15, forged_rate=0.03, expired_rate=0.03,
                           replay_rate=0.05, cloned_rate=0.02),
    "heavy": FaultConfig(disconnects_per_min=0.5, offline_s=(1.0, 5.0), duplicate_rate=0.1,
                         garbage_rate=0.08, skewed_fraction=0.4, forged_rate=0.1,
                         expired_rate=0.1, replay_rate=0.15, cloned_rate=0.05),
}


def parse_faults(spec: str) -> FaultConfig:
    """``"default"``, ``"none"``, ``"heavy"``, optionally with overrides:
    ``"default,garbage_rate=0.1,disconnects_per_min=1"``."""
    name, *overrides = [part.strip() for part in spec.split(",") if part.strip()] or ["none"]
    if name not in PRESETS:
        raise ValueError(f"unknown fault preset {name!r} (one of {', '.join(PRESETS)})")
    config = PRESETS[name]
    known = {f.name for f in fields(FaultConfig)}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in known or key in ("offline_s", "skew_s"):
            raise ValueError(f"bad fault override {item!r}")
        config = replace(config, **{key: float(value)})
    return config


@dataclass(frozen=True)
class Token:
    """A token as shown to a reader, with the fault applied to it (``None`` if genuine)."""

    value: str
    fault: str | None
    #: For card identifications: the UID of the tag it is read from.
    card_uid: str | None = None


class FaultInjector:
    """Makes every random fault decision of a fleet run from one seeded RNG."""

    def __init__(self, config: FaultConfig, loyalty_key: bytes, *, seed: int | str = 0,
                 key_id: str = "k1") -> None:
        self.config = config
        self.rng = random.Random(f"{seed}:faults")
        self._key = loyalty_key
        self._key_id = key_id
        self._shown_app_tokens: deque[str] = deque(maxlen=50)

    # -- infrastructure ------------------------------------------------------
    def clock_skew(self) -> float:
        """Skew for one device: 0 for most, +/- minutes for ``skewed_fraction`` of them."""
        if self.rng.random() >= self.config.skewed_fraction:
            return 0.0
        return self.rng.choice((-1, 1)) * self.rng.uniform(*self.config.skew_s)

    def next_disconnect_in(self) -> float | None:
        """Real seconds until a device's next network cut, or None if cuts are off."""
        if self.config.disconnects_per_min <= 0:
            return None
        return self.rng.expovariate(self.config.disconnects_per_min / 60.0)

    def offline_duration(self) -> float:
        return self.rng.uniform(*self.config.offline_s)

    def garbage(self) -> bool:
        return self.rng.random() < self.config.garbage_rate

    # -- identity ------------------------------------------------------------
    def _pick_token_fault(self, extra: str, extra_rate: float) -> str | None:
        r = self.rng.random()
        for name, rate in (("forged", self.config.forged_rate),
                           ("expired", self.config.expired_rate), (extra, extra_rate)):
            if r < rate:
                return name
            r -= rate
        return None

    def card_token(self, customer_id: str, card_uid: str, now: float) -> Token:
        """The token on a customer's card as a reader sees it, possibly faulty."""
        fault = self._pick_token_fault("cloned", self.config.cloned_rate)
        key, issued, uid = self._key, now - self.rng.uniform(0, 30 * 86400), card_uid
        if fault == "forged":
            key = secrets.token_bytes(32)
        elif fault == "expired":
            issued = now - CARD_TTL_S - self.rng.uniform(86400, 90 * 86400)
        elif fault == "cloned":
            uid = "04" + self.rng.randbytes(6).hex()  # a blank NTAG with the copied token
        token = issue_token(key, customer_id, kind="card", now=issued, ttl_s=CARD_TTL_S,
                            key_id=self._key_id, card_uid=card_uid)
        return Token(token, fault, uid)

    def app_token(self, customer_id: str, now: float, gtin: str | None = None) -> Token:
        """The token in a customer's app QR code, possibly forged, expired or replayed.

        ``gtin``: the product the customer just scanned with the app, signed into the token.
        """
        fault = self._pick_token_fault("replayed", self.config.replay_rate)
        if fault == "replayed" and self._shown_app_tokens:
            return Token(self.rng.choice(self._shown_app_tokens), fault)
        key, issued = self._key, now
        if fault == "forged":
            key = secrets.token_bytes(32)
        elif fault == "expired":
            issued = now - APP_TTL_S - self.rng.uniform(60, 3600)
        else:
            fault = None
        token = issue_token(key, customer_id, kind="app", now=issued, ttl_s=APP_TTL_S,
                            key_id=self._key_id, gtin=gtin)
        if fault is None:
            self._shown_app_tokens.append(token)
        return Token(token, fault)
