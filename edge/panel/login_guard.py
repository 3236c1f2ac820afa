"""What stands between a guesser and the panel: throttles, device cookies, live sessions.

Three small parts, each owning one piece of server-side state (in the panel's
process: the panel runs inside the edge node, one process per store):

- :class:`LoginThrottle`: failed logins counted per key, with a delay that
  doubles after a few free failures (1 s, 2 s, 4 s ... up to 5 min). Keys are
  ``(user name, client)``, so a stranger's guesses slow down only that
  stranger, and a per-client key for guesses spread over many names. While a
  key waits, the password is not even checked: no oracle, and the refusal is
  the same whether the name exists or not.
- device cookies (:func:`issue_device`, :func:`device_of`): after a successful
  login the browser gets a signed cookie naming the user and a random device
  id (OWASP's "device cookie"). A login that presents it is keyed by the
  device, not the address, so a stranger behind the same NAT or reverse proxy
  cannot slow the manager down on the manager's own tablet.
- :class:`SessionRegistry`: the live sessions. The signed session cookie
  carries a session id that must be registered here, so logging out ends the
  session for good (a copied cookie is dead), and a restart ends them all.
  Each session also carries a stamp of the user's password hash
  (:func:`edge.panel.users.session_stamp`), so a password reset, from the
  panel or from ``vitrine edge panel-user add --reset`` in another process,
  ends every session of that user at their next request.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

#: Failures allowed without any delay, per (user, client) and per client.
FREE_FAILURES = 3
FREE_FAILURES_PER_CLIENT = 20
#: First delay after the free failures, doubling with each further failure, capped.
BASE_DELAY_S = 1.0
MAX_DELAY_S = 300.0
#: A key's failures are forgotten this long after its last one.
FORGET_AFTER_S = 3600.0
#: Most keys kept; beyond it the oldest are dropped (bounds memory under a spray).
MAX_KEYS = 50_000

DEVICE_COOKIE = "vitrine_panel_device"
DEVICE_MAX_AGE_S = 90 * 86400


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """``wait(key)`` -> seconds before the next attempt; ``fail(key)``; ``forget(key)``."""

    def __init__(self, free: int = FREE_FAILURES, base_s: float = BASE_DELAY_S,
                 max_s: float = MAX_DELAY_S, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.free, self.base_s, self.max_s = free, base_s, max_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, _Failures] = {}

    def delay_after(self, failures: int) -> float:
        """Delay imposed after ``failures`` failures in a row."""
        if failures < self.free:
            return 0.0
        return min(self.max_s, self.base_s * 2 ** min(failures - self.free, 30))

    def wait(self, key: str) -> float:
        now = self._clock()
        with self._lock:
            f = self._keys.get(key)
            if f is None or now - f.last > FORGET_AFTER_S:
                return 0.0
            return max(0.0, f.last + self.delay_after(f.count) - now)

    def fail(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            f = self._keys.get(key)
            if f is None or now - f.last > FORGET_AFTER_S:
                f = self._keys[key] = _Failures(0, now)
            f.count += 1
            f.last = now
            if len(self._keys) > MAX_KEYS:
                oldest = sorted(self._keys, key=lambda k: self._keys[k].last)
                for k in oldest[:len(oldest) // 2]:
                    del self._keys[k]

    def forget(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)


def _device_signer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="vitrine-panel-device")


def issue_device(secret_key: str, username: str, device: str | None = None) -> str:
    """A device cookie value for ``username`` (a new random device id unless given)."""
    return _device_signer(secret_key).dumps({"u": username,
                                             "d": device or secrets.token_urlsafe(16)})


def device_of(secret_key: str, cookie: str | None, username: str) -> str | None:
    """The device id of a valid, unexpired cookie issued to ``username``, else None."""
    if not cookie or len(cookie) > 512:
        return None
    try:
        data = _device_signer(secret_key).loads(cookie, max_age=DEVICE_MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != username:
        return None
    device = data.get("d")
    return device if isinstance(device, str) else None


@dataclass
class _Session:
    username: str
    expires: float


class SessionRegistry:
    """Server-side record of live panel sessions (see module docstring)."""

    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.time) -> None:
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}

    def open(self, username: str) -> str:
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            if len(self._sessions) > MAX_KEYS:
                self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
            self._sessions[sid] = _Session(username, now + self.lifetime_s)
        return sid

    def user_of(self, sid: object) -> str | None:
        """The user of live session ``sid``, or None (unknown, closed or expired)."""
        if not isinstance(sid, str):
            return None
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                return None
            if s.expires <= self._clock():
                del self._sessions[sid]
                return None
            return s.username

    def close(self, sid: object) -> None:
        if isinstance(sid, str):
            with self._lock:
                self._sessions.pop(sid, None)

    def close_user(self, username: str) -> int:
        """End every session of ``username``; return how many."""
        with self._lock:
            gone = [k for k, s in self._sessions.items() if s.username == username]
            for k in gone:
                del self._sessions[k]
        return len(gone)
