"""The writer process: the pipeline on its own core.

In one process the edge's receive path (paho, ~72 µs/message with the tuned
transport) and its pipeline (~61 µs/message) share one GIL, which capped ingest
at ~8,500 events/s on a 2-core store box. With ``writer_process = true`` the
pipeline, the SQLite write connection and housekeeping move to a child process;
the parent keeps MQTT, publishes and acks. Batches cross a pipe (pickled once
per batch, not per message), so the two halves run in parallel.

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
import signal
import sqlite3
import time
from collections import Counter
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
    conn.send(("ready",))
    parent = os.getppid()
    while True:
        if not conn.poll(1.0):
            if os.getppid() != parent:  # orphaned without PDEATHSIG support
                return
            continue
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg[0] == "batch":
            items = [Inbound(*t) for t in msg[1]]
            try:
                result = pipeline.process_batch(items)
            except sqlite3.Error as exc:
                conn.send(("sqlite_error", str(exc)))
                continue
            conn.send(("ok", [(k, text) for k, _ev, text in result.events], dict(result.counts),
                       result.done))
        elif msg[0] == "requests":
            try:
                replies = router.process([Inbound(*t) for t in msg[1]])
            except sqlite3.Error as exc:
                conn.send(("sqlite_error", str(exc)))
                continue
            conn.send(("replies", [(r.topic, r.payload, r.device_id, r.request_id, r.ok)
                                   for r in replies]))
        elif msg[0] == "housekeeping":
            conn.send(("upkeep", keeper.run(msg[1], msg[2])))
        elif msg[0] == "stop":
            db.conn.close()
            conn.send(("stopped",))
            return


class WriterProcess:
    """Parent side: send a batch, get back what was committed."""

    def __init__(self, cfg: EdgeConfig, metrics: Metrics):
        ctx = mp.get_context(START_METHOD)  # the parent has threads: never fork it
        self._conn, child_conn = ctx.Pipe()
        self._metrics = metrics
        #: Set by the node: False when nothing in the parent reads event contents.
        self.decode_events = True
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

    def process_batch(self, items: list[Inbound]) -> BatchResult:
        t0 = time.perf_counter()
        self._send(("batch", [(i.mid, i.qos, i.topic, i.payload, i.received_at,
                               i.retained, i.frame_texts, i.frame_error) for i in items]))
        reply = self._expect("ok", "sqlite_error")
        if reply[0] == "sqlite_error":
            raise sqlite3.OperationalError(reply[1])
        # Event dicts are decoded only when someone in this process reads them
        # (listeners, kiosk/signage commands); publishing needs just the text.
        decode = self.decode_events
        result = BatchResult(events=[(k, orjson.loads(text) if decode else None, text)
                                     for k, text in reply[1]],
                             counts=Counter(reply[2]), done=reply[3])
        self._metrics.commit((time.perf_counter() - t0) * 1000, len(items))
        self._metrics.add_many(result.counts)
        return result

    def process_requests(self, items: list[Inbound]) -> list[OutboundReply]:
        """Have the writer answer requests; the replies come back after its COMMIT."""
        self._send(("requests", [(i.mid, i.qos, i.topic, i.payload, i.received_at)
                                 for i in items]))
        reply = self._expect("replies", "sqlite_error")
        if reply[0] == "sqlite_error":
            raise sqlite3.OperationalError(reply[1])
        return [OutboundReply(*t) for t in reply[1]]

    def housekeeping(self, now: float, reload: bool) -> Upkeep:
        self._send(("housekeeping", now, reload))
        return self._expect("upkeep")[1]

    def stop(self) -> None:
        try:
            self._send(("stop",))
            self._expect("stopped")
        except (WriterDied, OSError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
