"""Benchmark: latency of the profile view with 100k customers and 2M events on PostgreSQL.

The data set is generated inside PostgreSQL (``INSERT ... SELECT`` over
``generate_series``, secondary indexes rebuilt after the load): per customer
about 20 events over 90 days (interest taps, half of them anonymous and joined
through the customer's session link, presence, loyalty credits, profile
updates from CRM/web). ``vitrine central serve`` (gunicorn, its default worker count)
serves it; the client reads random profiles over HTTP one at a time and measures each
round trip.

    python -m bench.profile_read [--customers 100000] [--events 2000000] [--reads 3000]

Last line of output: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import urllib.request
from collections.abc import Sequence

import psycopg

from bench.central_ingest import ADMIN, central_workers
from central.db import PostgresDatabase
from central.migrations import migrate
from central.pg_sandbox import start_cluster

_SECONDARY_INDEXES = {
    "events_customer": "CREATE INDEX events_customer ON events (customer_id, occurred_at)",
    "events_session": "CREATE INDEX events_session ON events (session_id)",
}


def load(url: str, customers: int, events: int) -> None:
    """Generate the data set server-side (seconds, not minutes of client round trips)."""
    db = PostgresDatabase(url)
    migrate(db)
    db.close()
    now = time.time()
    with psycopg.connect(url, autocommit=True) as conn:
        for name in _SECONDARY_INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("INSERT INTO customers SELECT 'cust-' || i, %s "
                     "FROM generate_series(0, %s - 1) i", (now, customers))
        conn.execute("INSERT INTO consents SELECT 'cust-' || i, 'tracking', 1, 'crm', %s "
                     "FROM generate_series(0, %s - 1) i", (now, customers))
        conn.execute("INSERT INTO identity_links SELECT 'session', 'sess-' || i, 'cust-' || i, %s "
                     "FROM generate_series(0, %s - 1) i", (now, customers))
        conn.execute("""
            INSERT INTO events (event_id, kind, channel, source, store_id, zone, customer_id,
                                session_id, gtin, category, points, occurred_at, ingested_at,
                                payload)
            SELECT 'ev-' || i, k.kind,
                   CASE WHEN k.kind = 'profile' THEN (ARRAY['crm','web'])[1 + i %% 2]
                        WHEN k.kind = 'loyalty' THEN 'web' ELSE 'store' END,
                   'bench', 'store-' || (i %% 50), 'z' || (i %% 8),
                   CASE WHEN k.kind = 'interest' AND i %% 2 = 0 THEN NULL
                        ELSE 'cust-' || (i %% %(c)s) END,
                   'sess-' || (i %% %(c)s),
                   CASE WHEN k.kind = 'interest' THEN lpad((i %% 20000)::text, 14, '0') END,
                   CASE WHEN k.kind = 'interest' THEN 'cat' || (i %% 50) END,
                   CASE WHEN k.kind = 'loyalty' THEN 10 END,
                   %(now)s - (i::bigint * 7919 %% 7776000), %(now)s,
                   CASE WHEN k.kind = 'profile' THEN
                     '{"type":"profile","fields":{"name":"Customer ' || (i %% %(c)s)
                     || '","email":"c' || i || '@example.com"}}'
                   ELSE '{"event_id":"ev-' || i || '","type":"' || k.kind || '"}' END
            FROM generate_series(1, %(n)s) i,
                 LATERAL (SELECT CASE WHEN i %% 20 = 0 THEN 'presence'
                                      WHEN i %% 50 = 1 THEN 'loyalty'
                                      WHEN i %% 97 = 2 THEN 'profile'
                                      ELSE 'interest' END AS kind) k
            """, {"c": customers, "n": events, "now": now})
        # Loyalty balances come from the ledger (central/loyalty.py): one entry per credit.
        conn.execute("INSERT INTO loyalty_ledger (customer_id, points, ref_kind, ref_id, "
                     "direction, source, event_id, occurred_at, recorded_at) SELECT "
                     "customer_id, points, 'purchase', event_id, 'credit', 'bench', event_id, "
                     "occurred_at, ingested_at FROM events WHERE kind = 'loyalty'")
        for ddl in _SECONDARY_INDEXES.values():
            conn.execute(ddl)
        conn.execute("ANALYZE")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--reads", type=int, default=3_000)
    args = parser.parse_args(argv)
    cluster = start_cluster()
    try:
        url = cluster.create_schema("bench_read")
        started = time.perf_counter()
        load(url, args.customers, args.events)
        load_s = time.perf_counter() - started
        print(f"loaded {args.customers:,} customers / {args.events:,} events in {load_s:.1f}s",
              flush=True)
        rng = random.Random(42)
        with central_workers(1, {"VITRINE_CENTRAL_DATABASE_URL": url}) as bases:
            latencies = []
            for n in range(args.reads + 200):
                cid = f"cust-{rng.randrange(args.customers)}"
                req = urllib.request.Request(f"{bases[0]}/api/v1/customers/{cid}")
                req.add_header("Authorization", f"Bearer {ADMIN}")
                t0 = time.perf_counter()
                with urllib.request.urlopen(req, timeout=30) as resp:
                    body = json.loads(resp.read())
                elapsed = (time.perf_counter() - t0) * 1000
                if not body["timeline"]:
                    raise RuntimeError(f"empty profile for {cid}")
                if n >= 200:  # the first 200 warm the pool and the caches
                    latencies.append(elapsed)
    finally:
        cluster.destroy()
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"profile read over HTTP: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(json.dumps({"customers": args.customers, "events": args.events,
                      "reads": len(latencies), "load_s": round(load_s, 1),
                      "p50_ms": round(p50, 2), "p99_ms": round(p99, 2),
                      "max_ms": round(latencies[-1], 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
