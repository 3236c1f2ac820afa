"""Benchmark: drain a 200k-event edge outbox into central after an outage.

End to end: rows in an edge outbox (SQLite, WAL, the edge's DDL) are read by
:class:`edge.forwarder.Forwarder`, posted to a real central worker process on a
throw-away PostgreSQL, committed into profiles, and marked sent. The clock
runs from the first batch to the outbox having no unsent row.

    python -m bench.drain [--events 200000] [--batch-size 500]

Last line of output: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.central_ingest import central_workers, make_events, store_token
from central.pg_sandbox import start_cluster
from edge.db import connect, migrate
from edge.forwarder import Forwarder


def fill_outbox(path: Path, events: list[dict]) -> None:
    db = connect(path)  # the edge's own database, migrations and pragmas
    migrate(db)
    conn = db.conn
    now = time.time()
    conn.execute("BEGIN")  # the edge connection is in autocommit mode: one transaction
    conn.executemany(
        "INSERT INTO outbox (event_id, kind, customer_key, payload, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [(e["event_id"], e["type"], e.get("customer_id") or e["session_id"], json.dumps(e),
          now) for e in events])
    conn.execute("COMMIT")
    conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    cluster = start_cluster()
    try:
        url = cluster.create_schema("bench_drain")
        with tempfile.TemporaryDirectory() as tmp, \
                central_workers(1, {"VITRINE_CENTRAL_DATABASE_URL": url}) as bases:
            outbox = Path(tmp) / "edge.db"
            fill_outbox(outbox, make_events(args.events, 20_000))
            fwd = Forwarder(outbox, bases[0], store_token(bases[0]), args.batch_size)
            print(f"outbox ready: {fwd.metrics()['backlog']:,} unsent events", flush=True)
            start = time.perf_counter()
            while fwd.drain_once():
                pass
            elapsed = time.perf_counter() - start
            metrics = fwd.metrics()
            fwd.close()
            if metrics["backlog"] or metrics["sent_total"] != args.events:
                raise RuntimeError(f"drain incomplete: {metrics}")
    finally:
        cluster.destroy()
    rate = args.events / elapsed
    print(f"drained {args.events:,} events in {elapsed:.1f}s: {rate:,.0f} events/s")
    print(json.dumps({"events": args.events, "batch_size": args.batch_size,
                      "central": "postgresql, 1 worker", "elapsed_s": round(elapsed, 2),
                      "events_per_s": round(rate)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
