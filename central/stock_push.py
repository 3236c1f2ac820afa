"""Real-time stock push: publish central's stock changes to one store's MQTT broker.

The same process also runs the erasure push (:mod:`central.erasure_push`): a
nudge on ``.../edge/sync/erasures`` that makes an online edge apply a new
erasure order within seconds, and the order push (:mod:`central.order_push`):
a nudge on ``.../edge/sync/orders`` that makes it pull its new orders and
status changes.

The edge pulls the stock feed every minute (``edge/sync.py``); this bridge makes
a change visible in the store within about a second instead. One bridge runs per
store, next to central or in the store::

    python -m central.stock_push --store store-001 --broker-host H --broker-port 8883 \\
        --username sync-bridge --password-env VITRINE_BRIDGE_PASSWORD [--cafile ca.pem] \\
        [--database-url postgresql://… | --config central.toml]

It **polls** the stock feed's version counter (``central/feeds/model.py``) every
``--interval-ms`` rather than hooking the load path: loads arrive through any
central worker or the ``central.feeds`` CLI, possibly on other machines, and
the versioned feed already gives "everything after N" with no gap (the counter
lock is held until commit). An idle poll is one indexed query.

Each page of changes becomes one message in exactly the format the edge accepts
(:func:`contract.stock_push.stock_message`) on ``vitrine/v1/<store>/edge/sync/stock``,
QoS 1. The cursor (``stock_push_cursors``) advances only after the broker
acknowledged the message with a success reason code, so a bridge killed at any
point re-sends at most one page (harmless: the edge keeps the newest
observation per (location, gtin)) and never skips one. A first start begins at
the current version: what came before is already in every edge's pulled copy,
and flooding a store with the whole stock table is what the pull is for.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from central.db import Database
from central.errors import CentralError
from central.feeds import model
from central.push_loop import PushError, run_with_backoff
from contract.service_client import PublishError, ServiceClient
from contract.stock_push import stock_message, sync_stock_topic

log = logging.getLogger("central.stock_push")

#: Items per message: ~100 bytes each, far below the edge's 1 MiB message limit.
PAGE_SIZE = 1000


# -- the persisted cursor -----------------------------------------------------------------------

def load_cursor(db: Database, store_id: str) -> int | None:
    """Last stock version pushed to ``store_id``; None if this store never had a bridge."""
    row = db.run(lambda tx: tx.one("SELECT version FROM stock_push_cursors WHERE store_id = ?",
                                   (store_id,)), write=False)
    return None if row is None else int(row["version"])


def save_cursor(db: Database, store_id: str, version: int, now: float | None = None) -> None:
    at = time.time() if now is None else now
    db.run(lambda tx: tx.execute(
        "INSERT INTO stock_push_cursors (store_id, version, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (store_id) DO UPDATE SET version = excluded.version, "
        "updated_at = excluded.updated_at", (store_id, version, at)))


# -- MQTT ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BrokerTarget:
    """The store broker and the bridge's credentials (a principal of role ``edge``)."""

    host: str
    port: int
    username: str
    password: str
    cafile: str | None = None
    client_id: str | None = None


class StockPublisher:
    """Publishes one QoS 1 message at a time and checks its ack (``contract.service_client``).

    Waiting for each PUBACK keeps the cursor honest: a message counts as pushed
    only when the broker said so with a success reason code (an ACL refusal
    comes back as "not authorized", which paho alone would report as published).
    """

    def __init__(self, target: BrokerTarget, topic: str, ack_timeout_s: float = 10.0) -> None:
        self.topic = topic
        self.ack_timeout_s = ack_timeout_s
        client_id = target.client_id or f"vitrine-stock-push-{target.username}"
        self._client = ServiceClient(target.host, target.port, target.username,
                                     target.password, client_id=client_id,
                                     cafile=target.cafile).start()
        self.connected = self._client.connected

    def publish(self, payload: bytes, topic: str | None = None) -> None:
        """Publish (on ``topic``, default the stock topic) and wait for the broker's ack;
        :class:`PushError` unless accepted."""
        try:
            self._client.publish(topic or self.topic, payload, self.ack_timeout_s)
        except PublishError as exc:
            raise PushError(str(exc)) from None

    def close(self) -> None:
        self._client.close()


# -- the bridge -----------------------------------------------------------------------------------

class StockBridge:
    """Polls the stock feed after the persisted cursor and publishes each page."""

    def __init__(self, db: Database, store_id: str, publish: Callable[[bytes], None], *,
                 interval_s: float = 0.5, page_size: int = PAGE_SIZE,
                 backoff_cap_s: float = 30.0) -> None:
        self.db = db
        self.store_id = store_id
        self.publish = publish
        self.interval_s = interval_s
        self.page_size = page_size
        self.backoff_cap_s = backoff_cap_s
        self.cursor = self._start_cursor()
        self.counters = {"messages_total": 0, "items_total": 0, "failures_total": 0}
        self._stop = threading.Event()

    def _start_cursor(self) -> int:
        saved = load_cursor(self.db, self.store_id)
        if saved is not None:
            log.info("stock push for %s resumes after version %d", self.store_id, saved)
            return saved
        current = self.db.run(lambda tx: model.current_version(tx, "stock"), write=False)
        save_cursor(self.db, self.store_id, current)
        log.info("stock push for %s starts at version %d (earlier stock comes by pull)",
                 self.store_id, current)
        return current

    def _read(self) -> dict[str, Any]:
        return self.db.run(lambda tx: model.read(tx, model.STOCK, self.store_id, self.cursor,
                                                 self.page_size), write=False)

    def push_once(self) -> int:
        """Publish every change after the cursor, a page at a time; return items pushed.

        Raises :class:`PushError` (or a database error) with the cursor left at
        the last page the broker acknowledged.
        """
        pushed = 0
        while not self._stop.is_set():
            page = self._read()
            if page["full"] and self.cursor > 0:
                # Central's counter went back (restored from a backup): the edges'
                # pulls re-sync in full by themselves; do not flood them as well.
                current = self.db.run(lambda tx: model.current_version(tx, "stock"),
                                      write=False)
                log.warning("stock version went back from %d to %d; resuming from there",
                            self.cursor, current)
                self.cursor = current
                save_cursor(self.db, self.store_id, current)
                break
            items = [{"location": i["location"], "gtin": i["gtin"],
                      "quantity": int(i["quantity"]), "observed_at": float(i["observed_at"])}
                     for i in page["items"]]
            if items:
                self.publish(stock_message(items))
                self.counters["messages_total"] += 1
                self.counters["items_total"] += len(items)
                pushed += len(items)
            if page["version"] != self.cursor:
                self.cursor = int(page["version"])
                save_cursor(self.db, self.store_id, self.cursor)
            if not page["more"]:
                break
        if pushed:
            log.info("pushed %d stock change(s) to %s, version %d", pushed, self.store_id,
                     self.cursor)
        return pushed

    def run(self) -> None:
        """Poll until :meth:`stop`; failures back off (capped) and never skip a change."""
        run_with_backoff(self.push_once, self._stop, interval_s=self.interval_s,
                         backoff_cap_s=self.backoff_cap_s, counters=self.counters, log=log,
                         what=lambda: f"stock push to {self.store_id} (cursor {self.cursor})")

    def stop(self) -> None:
        self._stop.set()


# -- command line ---------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m central.stock_push",
                                description="Push central's stock changes to a store broker.")
    p.add_argument("--store", required=True, help="store id (topic vitrine/v1/<store>/...)")
    p.add_argument("--broker-host", required=True)
    p.add_argument("--broker-port", type=int, default=1883)
    p.add_argument("--username", required=True, help="broker principal of role 'edge'")
    p.add_argument("--password-env", required=True,
                   help="environment variable holding the broker password")
    p.add_argument("--cafile", help="CA certificate: connect with TLS")
    p.add_argument("--interval-ms", type=int, default=500, help="poll period (default 500)")
    p.add_argument("--config", help="central TOML config file (else $VITRINE_CENTRAL_CONFIG)")
    p.add_argument("--database-url", help="PostgreSQL URL (else central's SQLite)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bridge until SIGTERM/SIGINT; returns the process exit status."""
    from central import create_app
    from central.erasure_push import ErasureBridge
    from central.order_push import OrderBridge
    from contract.erasure_push import sync_erasures_topic
    from contract.order_push import sync_orders_topic

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    password = os.environ.get(args.password_env)
    if password is None:
        print(f"error: ${args.password_env} is not set", file=sys.stderr)
        return 2
    try:
        topic = sync_stock_topic(args.store)
        app = create_app({"database_url": args.database_url} if args.database_url else None,
                         config_file=args.config)
    except (CentralError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    db: Database = app.extensions["central_db"]
    publisher = StockPublisher(BrokerTarget(args.broker_host, args.broker_port, args.username,
                                            password, args.cafile,
                                            f"vitrine-stock-push-{args.store}"), topic)
    bridge = StockBridge(db, args.store, publisher.publish,
                         interval_s=max(args.interval_ms, 10) / 1000)
    erasures_topic = sync_erasures_topic(args.store)
    erasures = ErasureBridge(db, args.store, lambda p: publisher.publish(p, erasures_topic),
                             interval_s=max(args.interval_ms, 10) / 1000)
    orders_topic = sync_orders_topic(args.store)
    orders = OrderBridge(db, args.store, lambda p: publisher.publish(p, orders_topic),
                         interval_s=max(args.interval_ms, 10) / 1000)
    nudgers = [threading.Thread(target=erasures.run, name="erasure-push", daemon=True),
               threading.Thread(target=orders.run, name="order-push", daemon=True)]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        bridge.stop()
        erasures.stop()
        orders.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"stock push for {args.store} -> {args.broker_host}:{args.broker_port} {topic}",
          flush=True)
    try:
        if not publisher.connected.wait(10):  # bounded: run() then retries with backoff
            log.warning("broker %s:%d not reachable yet", args.broker_host, args.broker_port)
        for thread in nudgers:
            thread.start()
        bridge.run()
    finally:
        erasures.stop()
        orders.stop()
        for thread in nudgers:
            if thread.is_alive():
                thread.join(10)
        publisher.close()
        db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
