"""The writer process: the pipeline on its own core.

In one process the edge's receive path (paho, ~72 µs/message with the tuned
transport) and its pipeline (~61 µs/message) share one GIL, which capped ingest
at ~8,500 events/s on a 2-core store box. With ``writer_process = true`` the
pipeline, the SQLite write connection and housekeeping move to a child process;
the parent keeps MQTT, publishes and acks. Batches cross a pipe (pickled once
per batch, not per message), so the two halves run in parallel.

The parent does not wait for a batch's reply before sending the next one (at
most ``PIPELINE_DEPTH`` in ``edge/node.py``): the writer starts on the next
batch while the parent publishes and acknowledges the last. Replies come back in
order; the writer reads what the parent sends on a thread of its own, so the
parent's next batch and the writer's reply never wait for each other in send().
A batch the database refuses makes the writer refuse ("skipped") every
batch sent behind it until the parent says "resume", so nothing is committed
ahead of the retry of an earlier batch.

Guarantees are unchanged: the parent acknowledges a batch to the broker only
after the child replied that its transaction committed. If the child dies, the
parent exits at once (nothing unacknowledged is lost: the broker redelivers);
if the parent dies, the kernel kills the child (``PR_SET_PDEATHSIG``), so a
restarted edge never finds a second writer on its database.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import queue
import signal
import socket
import sqlite3
import threading
import time
from collections import Counter, deque
from typing import Any

import orjson

from .config import EdgeConfig
from .housekeeping import Upkeep
from .inbound import Inbound
from .metrics import Metrics
from .pipeline import BatchResult
from .requests import OutboundReply

log = logging.getLogger("vitrine.edge.writer")
PR_SET_PDEATHSIG = 1
#: How the writer is started: "spawn", a fresh interpreter (the parent has threads, so
#: never a plain fork). Only the test suite's override (tests/conftest.py) changes it, to
#: a forkserver with these modules preloaded: the same child code, started in
#: milliseconds instead of an interpreter start per edge; edges the tests run as
#: processes keep "spawn". No setting, file or variable reaches it in production.
START_METHOD = "spawn"


class WriterDied(RuntimeError):
    """The writer process is gone: the edge must restart (the broker keeps the messages)."""


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the parent's watchdog below still ends us
        pass


def _child(cfg: EdgeConfig, conn: Any, log_level: int) -> None:
    _die_with_parent()
    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the
    # parent decides when the writer stops (after its last batch), not the signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level,
                        format="%(asctime)s %(levelname)-7s %(name)s[writer]: %(message)s")
    from .db import connect, migrate
    from .writer_core import build_writer_core

    db = connect(cfg.db_path, synchronous=cfg.sqlite_synchronous,
                 busy_timeout_s=cfg.sqlite_busy_timeout_s)
    migrate(db)
    core = build_writer_core(cfg, db, Metrics())
    pipeline, keeper, router = core.pipeline, core.housekeeper, core.requests
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def read_inbox() -> None:
        # Always reading what the parent sends: it sends the next batch while this
        # process may be sending a reply, and with both larger than the socket buffers,
        # two processes each blocked in send() would wait for each other forever.
        try:
            while True:
                inbox.put(conn.recv())
        except (EOFError, OSError):
            inbox.put(None)

    threading.Thread(target=read_inbox, name="writer-inbox", daemon=True).start()
    conn.send(("ready",))
    parent = os.getppid()
    #: After a batch failed to commit, the batches the parent had already sent behind it
    #: are refused ("skipped") until it says "resume": it retries them all, in order.
    failed = False
    while True:
        try:
            msg = inbox.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # orphaned without PDEATHSIG support
                return
            continue
        if msg is None:  # the parent is gone
            return
        if failed and msg[0] in ("batch", "requests"):
            conn.send(("skipped",))
        elif msg[0] == "batch":
            items = [Inbound(*t) for t in msg[1]]
            t0 = time.perf_counter()
            try:
                result = pipeline.process_batch(items)
            except sqlite3.Error as exc:
                failed = True
                conn.send(("sqlite_error", str(exc)))
                continue
            conn.send(("ok", [(k, text) for k, _ev, text in result.events], dict(result.counts),
                       result.done, (time.perf_counter() - t0) * 1000))
        elif msg[0] == "requests":
            try:
                replies = router.process([Inbound(*t) for t in msg[1]])
            except sqlite3.Error as exc:
                failed = True
                conn.send(("sqlite_error", str(exc)))
                continue
            conn.send(("replies", [(r.topic, r.payload, r.device_id, r.request_id, r.ok)
                                   for r in replies]))
        elif msg[0] == "resume":
            failed = False
            conn.send(("resumed",))
        elif msg[0] == "housekeeping":
            conn.send(("upkeep", keeper.run(msg[1], msg[2])))
        elif msg[0] == "stop":
            db.conn.close()
            conn.send(("stopped",))
            return


#: Socket buffer of each end of the parent/writer connection: a batch's reply (its
#: events' JSON, ~450 bytes each) fits whole, so the writer's send() returns at once
#: and it goes back to work instead of waiting for the parent's thread to read it.
PIPE_BUFFER_BYTES = 4 * 1024 * 1024


def _widen(end: Any) -> None:
    """Raise the socket buffers of one end of a ``multiprocessing`` pipe (best effort)."""
    try:
        sock = socket.socket(fileno=os.dup(end.fileno()))
    except OSError:
        return
    with sock:
        for force, opt in ((getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF),
                           (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF)):
            for name in (force, opt):  # FORCE: above net.core.*mem_max, needs root
                if name is None:
                    continue
                try:
                    sock.setsockopt(socket.SOL_SOCKET, name, PIPE_BUFFER_BYTES)
                    break
                except OSError:
                    continue


class WriterProcess:
    """Parent side: send a batch, get back what was committed."""

    def __init__(self, cfg: EdgeConfig, metrics: Metrics):
        ctx = mp.get_context(START_METHOD)  # the parent has threads: never fork it
        self._conn, child_conn = ctx.Pipe()
        for end in (self._conn, child_conn):
            _widen(end)
        self._metrics = metrics
        #: Set by the node: False when nothing in the parent reads event contents.
        self.decode_events = True
        #: (reply kind, messages, decode events) of what was sent, oldest first.
        self._outstanding: deque[tuple[str, int, bool]] = deque()
        self.process = ctx.Process(
            target=_child, args=(cfg, child_conn, logging.getLogger().getEffectiveLevel()),
            name="edge-writer", daemon=True)
        self.process.start()
        child_conn.close()
        if not self._conn.poll(60):
            raise WriterDied("writer process did not start")
        self._expect("ready")

    def _expect(self, *kinds: str) -> tuple[Any, ...]:
        try:
            reply = self._conn.recv()
        except (EOFError, OSError):
            raise WriterDied(f"writer process died (exit code {self.process.exitcode})") from None
        if reply[0] not in kinds:
            raise WriterDied(f"unexpected reply {reply[0]!r}")
        return reply

    def _send(self, msg: tuple[Any, ...]) -> None:
        try:
            self._conn.send(msg)
        except (OSError, EOFError):  # BrokenPipeError: the child is gone
            raise WriterDied(f"writer process died (exit code {self.process.exitcode})") from None

    # -- submit now, collect the replies later, in order ---------------------------------
    @property
    def outstanding(self) -> int:
        """Batches and requests sent to the writer whose reply has not been collected."""
        return len(self._outstanding)

    def submit_batch(self, items: list[Inbound]) -> None:
        """Send a batch to the writer without waiting; :meth:`collect_batch` gets its result."""
        self._send(("batch", [(i.mid, i.qos, i.topic, i.payload, i.received_at,
                               i.retained, i.frame_texts, i.frame_error) for i in items]))
        self._outstanding.append(("ok", len(items), self.decode_events))

    def submit_requests(self, items: list[Inbound]) -> None:
        """Send requests to the writer without waiting (answered after the batch before)."""
        self._send(("requests", [(i.mid, i.qos, i.topic, i.payload, i.received_at)
                                 for i in items]))
        self._outstanding.append(("replies", len(items), False))

    def collect_batch(self) -> BatchResult:
        """The oldest outstanding reply, a batch's: what it committed and derived.

        Raises :class:`sqlite3.OperationalError` when it was not committed (the
        database refused it, or it was sent behind one that was refused): call
        :meth:`recover`, then send it and everything after it again, in order.
        """
        reply, n, decode = self._next_reply("ok")
        # Event dicts are decoded only when someone in this process reads them
        # (listeners, kiosk/signage commands); publishing needs just the text.
        result = BatchResult(events=[(k, orjson.loads(text) if decode else None, text)
                                     for k, text in reply[1]],
                             counts=Counter(reply[2]), done=reply[3])
        # The writer's own time on it: the time it waited behind the batch before is not
        # this batch's commit.
        self._metrics.commit(reply[4], n)
        self._metrics.add_many(result.counts)
        return result

    def collect_replies(self) -> list[OutboundReply]:
        """The oldest outstanding reply, requests': their answers, committed (raises likewise)."""
        reply, _n, _decode = self._next_reply("replies")
        return [OutboundReply(*t) for t in reply[1]]

    def _next_reply(self, kind: str) -> tuple[tuple[Any, ...], int, bool]:
        sent, n, decode = self._outstanding.popleft()
        if sent != kind:
            raise WriterDied(f"collected a {kind!r} reply where {sent!r} was due")
        reply = self._expect(kind, "sqlite_error", "skipped")
        if reply[0] == "sqlite_error":
            raise sqlite3.OperationalError(reply[1])
        if reply[0] == "skipped":
            raise sqlite3.OperationalError("not tried: a batch before it was not committed")
        return reply, n, decode

    def recover(self) -> None:
        """After a refused batch: drop the replies still due (all refused), resume the writer."""
        self._drop_outstanding()
        self._send(("resume",))
        self._expect("resumed")

    def _drop_outstanding(self) -> None:
        """Read and forget the replies still due: nothing of them is acknowledged."""
        while self._outstanding:
            self._expect(self._outstanding.popleft()[0], "sqlite_error", "skipped")

    def housekeeping(self, now: float, reload: bool) -> Upkeep:
        """Run the writer's housekeeping (only with nothing outstanding: replies are in order)."""
        assert not self._outstanding, "collect outstanding batches before housekeeping"
        self._send(("housekeeping", now, reload))
        return self._expect("upkeep")[1]

    def stop(self) -> None:
        try:
            self._drop_outstanding()  # not acknowledged: the broker redelivers them
            self._send(("stop",))
            self._expect("stopped")
        except (WriterDied, OSError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
