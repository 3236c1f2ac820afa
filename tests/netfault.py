"""A flapping TCP proxy for fault tests: real sockets on 127.0.0.1, standard library only.

:class:`FlappingProxy` relays every connection to one upstream address. While
flapping it periodically (every ``flap_every`` seconds, jittered) cuts every open
connection abruptly, half of them with an RST (``SO_LINGER`` 0) and half with a
plain close (FIN), then closes its listening socket so new connections are
refused for a random ``down_for`` window, and opens it again on the same port.
It also truncates some responses: a connection picked with probability
``truncate_p`` is cut after only part of the upstream's reply was forwarded (in
the status line, the headers or the body), so the client sees an error for a
request the server has in fact completed. A few requests are cut part-way
instead (``cut_request_p``), so the server sees a truncated body.

One selector thread does everything (accepting, relaying, flapping), so there
are no locks on the relay path and :meth:`stop` shuts it down in one join.
"""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

#: Bytes buffered per direction before the proxy stops reading that side.
BUFFER_LIMIT = 256 * 1024


def abort(sock: socket.socket, rst: bool) -> None:
    """Close ``sock`` at once: with an RST when ``rst``, else with a FIN."""
    with contextlib.suppress(OSError):
        if rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


@dataclass(eq=False)
class _Pair:
    """One client connection and its upstream connection."""

    client: socket.socket
    upstream: socket.socket
    #: Upstream bytes to forward before cutting, or None to relay the reply whole.
    truncate_at: int | None
    #: Client bytes to forward before cutting, or None to relay the request whole.
    cut_request_at: int | None
    to_upstream: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)
    client_eof: bool = False
    upstream_eof: bool = False
    upstream_shut: bool = False
    client_shut: bool = False
    forwarded_down: int = 0
    forwarded_up: int = 0
    head: bytes = b""
    cut_pending: bool = False


class FlappingProxy:
    """TCP proxy ``127.0.0.1:port`` → ``upstream``; flaps between start/stop_flapping()."""

    def __init__(self, upstream: tuple[str, int], *, rng: random.Random | None = None,
                 flap_every: tuple[float, float] = (1.0, 2.0),
                 down_for: tuple[float, float] = (0.1, 0.6),
                 truncate_p: float = 0.15, cut_request_p: float = 0.05) -> None:
        self.upstream = upstream
        self.rng = rng or random.Random()
        self.flap_every = flap_every
        self.down_for = down_for
        self.truncate_p = truncate_p
        self.cut_request_p = cut_request_p
        #: ``connections``, ``flaps``, ``cut``, ``refused_windows``, ``truncated``,
        #: ``truncated_after_200`` (the upstream had answered 200: work done, reply lost),
        #: ``requests_cut``.
        self.stats: Counter[str] = Counter()
        self._sel = selectors.DefaultSelector()
        self._pairs: dict[socket.socket, _Pair] = {}
        self._listener: socket.socket | None = None
        self.port = 0
        self._open_listener()
        self._flapping = threading.Event()
        self._stop = threading.Event()
        self._next_flap = float("inf")
        self._reopen_at: float | None = None
        self._thread = threading.Thread(target=self._loop, name="flapping-proxy")
        self.error: BaseException | None = None

    # -- control (any thread) ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FlappingProxy:
        self._thread.start()
        return self

    def start_flapping(self) -> None:
        self._flapping.set()

    def stop_flapping(self) -> None:
        """Relay cleanly from now on (the listener reopens if it was down)."""
        self._flapping.clear()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop thread, close every socket; raise if the thread did not end."""
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError("proxy thread did not stop")
        self._sel.close()
        if self.error is not None:
            raise AssertionError(f"proxy loop failed: {self.error!r}") from self.error

    # -- loop (proxy thread only) -----------------------------------------------------------

    def _open_listener(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._sel.register(sock, selectors.EVENT_READ, None)

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._sel.unregister(self._listener)
            # Connections queued but not accepted yet are reset by the kernel.
            self._listener.close()
            self._listener = None

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._tick(time.monotonic())
                for key, mask in self._sel.select(timeout=0.02):
                    if key.data is None:
                        self._accept()
                    else:
                        self._service(key.data, key.fileobj, mask)
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            for pair in list(set(self._pairs.values())):
                self._drop(pair, rst=True)
            self._close_listener()

    def _tick(self, now: float) -> None:
        if not self._flapping.is_set():
            self._next_flap = float("inf")
            if self._listener is None:
                self._reopen(now, force=True)
            return
        if self._next_flap == float("inf"):
            self._next_flap = now + self.rng.uniform(*self.flap_every)
        if self._reopen_at is not None and now >= self._reopen_at:
            self._reopen(now)
        if now >= self._next_flap:
            self._flap(now)

    def _flap(self, now: float) -> None:
        """Cut everything, refuse connections for a while."""
        self.stats["flaps"] += 1
        for pair in list(set(self._pairs.values())):
            self.stats["cut"] += 1
            self._drop(pair, rst=self.rng.random() < 0.5)
        if self._listener is not None:
            self._close_listener()
            self.stats["refused_windows"] += 1
        self._reopen_at = now + self.rng.uniform(*self.down_for)
        self._next_flap = self._reopen_at + self.rng.uniform(*self.flap_every)

    def _reopen(self, now: float, force: bool = False) -> None:
        try:
            self._open_listener()
        except OSError:
            # Port briefly unavailable: keep refusing a little longer (bounded by the caller's
            # wait; stop() still ends the loop).
            self._reopen_at = now + 0.05
            if force:
                time.sleep(0.05)
            return
        self._reopen_at = None

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        self.stats["connections"] += 1
        try:
            upstream = socket.create_connection(self.upstream, timeout=2)
        except OSError:
            abort(client, rst=True)
            return
        client.setblocking(False)
        upstream.setblocking(False)
        truncate_at = cut_request_at = None
        draw = self.rng.random() if self._flapping.is_set() else 1.0
        if draw < self.truncate_p:
            # Status line, headers or body of the reply, about evenly.
            truncate_at = self.rng.choice((self.rng.randint(1, 16), self.rng.randint(17, 160),
                                           self.rng.randint(161, 4000)))
        elif draw < self.truncate_p + self.cut_request_p:
            cut_request_at = self.rng.randint(1, 20_000)
        pair = _Pair(client, upstream, truncate_at, cut_request_at)
        self._pairs[client] = self._pairs[upstream] = pair
        self._sel.register(client, selectors.EVENT_READ, pair)
        self._sel.register(upstream, selectors.EVENT_READ, pair)

    def _service(self, pair: _Pair, sock: socket.socket, mask: int) -> None:
        if sock not in self._pairs:
            return  # dropped earlier in this round
        try:
            if mask & selectors.EVENT_READ:
                self._read(pair, sock)
            if mask & selectors.EVENT_WRITE and sock in self._pairs:
                self._write(pair, sock)
        except OSError:
            self._drop(pair, rst=True)
            return
        if pair.client in self._pairs:
            self._settle(pair)

    def _read(self, pair: _Pair, sock: socket.socket) -> None:
        data = sock.recv(65536)
        if sock is pair.client:
            if not data:
                pair.client_eof = True
                return
            if pair.cut_request_at is not None:
                allowed = max(0, pair.cut_request_at - pair.forwarded_up)
                if len(data) > allowed:
                    data, pair.cut_pending = data[:allowed], True
            pair.forwarded_up += len(data)
            pair.to_upstream += data
            return
        if not data:
            pair.upstream_eof = True
            return
        if len(pair.head) < 16:
            pair.head += data[:16 - len(pair.head)]
        if pair.truncate_at is not None:
            allowed = max(0, pair.truncate_at - pair.forwarded_down)
            if len(data) > allowed:
                data, pair.cut_pending = data[:allowed], True
        pair.forwarded_down += len(data)
        pair.to_client += data

    def _write(self, pair: _Pair, sock: socket.socket) -> None:
        buf = pair.to_upstream if sock is pair.upstream else pair.to_client
        if buf:
            del buf[:sock.send(buf)]

    def _settle(self, pair: _Pair) -> None:
        """Truncate, half-close or finish ``pair`` as its state requires; update interests."""
        if pair.cut_pending and not pair.to_client and not pair.to_upstream:
            if pair.truncate_at is not None:
                self.stats["truncated"] += 1
                if pair.head.split(b" ")[1:2] == [b"200"]:
                    self.stats["truncated_after_200"] += 1
            else:
                self.stats["requests_cut"] += 1
            self._drop(pair, rst=self.rng.random() < 0.5)
            return
        if pair.client_eof and not pair.to_upstream and not pair.upstream_shut:
            pair.upstream_shut = True
            with contextlib.suppress(OSError):
                pair.upstream.shutdown(socket.SHUT_WR)
        if pair.upstream_eof and not pair.to_client and not pair.client_shut:
            pair.client_shut = True
            with contextlib.suppress(OSError):
                pair.client.shutdown(socket.SHUT_WR)
        if pair.upstream_shut and pair.client_shut:
            self._drop(pair, rst=False)
            return
        for sock, eof, inbox, outbox in (
                (pair.client, pair.client_eof, pair.to_upstream, pair.to_client),
                (pair.upstream, pair.upstream_eof, pair.to_client, pair.to_upstream)):
            events = selectors.EVENT_WRITE if outbox else 0
            if not eof and len(inbox) < BUFFER_LIMIT and not pair.cut_pending:
                events |= selectors.EVENT_READ
            self._want(sock, events, pair)

    def _want(self, sock: socket.socket, events: int, pair: _Pair) -> None:
        try:
            key: selectors.SelectorKey | None = self._sel.get_key(sock)
        except KeyError:
            key = None
        if not events:
            if key is not None:
                self._sel.unregister(sock)
        elif key is None:
            self._sel.register(sock, events, pair)
        elif key.events != events:
            self._sel.modify(sock, events, pair)

    def _drop(self, pair: _Pair, rst: bool) -> None:
        for sock in (pair.client, pair.upstream):
            self._pairs.pop(sock, None)
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(sock)
            abort(sock, rst)
