"""bench.pipeline: the edge pipeline alone (no MQTT), microseconds per message.

Builds the writer's parts exactly as the edge does (``edge.writer_core``) on a fresh
database seeded with a small layout, then feeds batches of 500 messages (half NFC taps of
a registered tag, half GS1 Digital Link QR scans, four devices) to
``Pipeline.process_batch``. Baseline in the same run: the same payloads inserted with
one ``executemany`` per batch into a bare table (what storing without validating,
deduplicating, enriching or deriving costs). Useful to compare two source trees
(``PYTHONPATH=tree python -m bench.pipeline``) on a machine too busy for bench.ingest.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from edge.config import load_config
from edge.db import connect, migrate
from edge.inbound import Inbound
from edge.metrics import Metrics
from edge.seed import seed
from edge.writer_core import build_writer_core

from .harness import GTIN, STORE, TAG_UID, layout, machine

N = int(os.environ.get("BENCH_MESSAGES", "30000"))
BATCH = 500
#: Named as bench.harness names them, so that each device's kind matches its channel (odd:
#: NFC readers, even: QR scanners); "d0".."d3" were all QR scanners, and the edge refuses a
#: scanner's NFC taps (channel_not_allowed): half the messages were quarantined, not stored.
DEVICES = ["dev-0", "dev-1", "dev-2", "dev-3"]


def _batch(start: int, n: int) -> list[Inbound]:
    out = []
    for i in range(start, start + n):
        if i % 2:
            body, channel = {"msg_id": f"m{i}", "ts": time.time(), "uid": TAG_UID}, "nfc"
        else:
            body = {"msg_id": f"m{i}", "ts": time.time(),
                    "text": f"https://id.gs1.org/01/{GTIN}"}
            channel = "qr"
        out.append(Inbound(i, 1, f"vitrine/v1/{STORE}/devices/{DEVICES[i % 4]}/{channel}",
                           json.dumps(body).encode(), time.time()))
    return out


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="vitrine-bench-"))
    cfg = load_config(env={}, store_id=STORE, db_path=tmp / "edge.db", panel_port=0)
    db = connect(cfg.db_path)
    migrate(db)
    seed(db, layout(DEVICES))
    core = build_writer_core(cfg, db, Metrics())
    batches = [_batch(i, BATCH) for i in range(0, N, BATCH)]
    core.pipeline.process_batch(_batch(10**8, BATCH))  # warm caches and compiled schemas
    t0 = time.perf_counter()
    for b in batches:
        core.pipeline.process_batch(b)
    pipeline_s = time.perf_counter() - t0
    accepted = core.pipeline.metrics.get("accepted")
    if accepted != N + BATCH:
        raise RuntimeError(f"only {accepted} of {N + BATCH} messages accepted")

    bare = sqlite3.connect(tmp / "bare.db", isolation_level=None)
    bare.execute("PRAGMA journal_mode=WAL")
    bare.execute("PRAGMA synchronous=NORMAL")
    bare.execute("CREATE TABLE raw (topic TEXT, payload BLOB, received_at REAL)")
    t0 = time.perf_counter()
    for b in batches:
        bare.execute("BEGIN")
        bare.executemany("INSERT INTO raw VALUES (?, ?, ?)",
                         [(i.topic, i.payload, i.received_at) for i in b])
        bare.execute("COMMIT")
    bare_s = time.perf_counter() - t0
    us, bare_us = pipeline_s / N * 1e6, bare_s / N * 1e6
    print(json.dumps({"messages": N, "batch": BATCH, "us_per_msg": round(us, 1),
                      "events_per_s": round(N / pipeline_s), "bare_us_per_msg": round(bare_us, 1),
                      "ratio": round(us / bare_us, 2), "machine": machine()}))


if __name__ == "__main__":
    main()
