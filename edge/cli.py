"""Command line of the edge node: ``vitrine edge`` / ``python -m edge``.

``vitrine edge panel-user add NAME --role manager|staff`` creates a user of the web panel.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from .config import ConfigError, load_config
from .node import EdgeNode


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="vitrine edge", description=__doc__)
    p.add_argument("--config", help="TOML file (default: $VITRINE_CONFIG)")
    p.add_argument("--store-id")
    p.add_argument("--db", dest="db_path")
    p.add_argument("--mqtt-host")
    p.add_argument("--mqtt-port", type=int)
    p.add_argument("--layout", dest="layout_path", help="store layout JSON to seed from")
    p.add_argument("--metrics-every", type=float, default=30.0,
                   help="log the counters every N seconds (0: never)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["panel-user"]:  # vitrine edge panel-user add NAME --role manager
        from .panel.users import main as panel_user_main

        return panel_user_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, store_id=args.store_id, db_path=args.db_path,
                          mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port,
                          layout_path=args.layout_path)
    except (ConfigError, OSError) as exc:
        logging.getLogger("vitrine.edge").error("configuration: %s", exc)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    node = EdgeNode(cfg).start()
    try:
        while not stop.wait(args.metrics_every or None):
            logging.getLogger("vitrine.edge.metrics").info(json.dumps(node.metrics.snapshot()))
    finally:
        node.stop()
    return 0
