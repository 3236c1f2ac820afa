"""Command line of the edge node: ``vitrine edge`` / ``python -m edge``.

``vitrine edge panel-user add NAME --role manager|staff`` creates a user of the web panel.
``vitrine edge backup DEST`` copies the live database; ``vitrine edge restore BACKUP`` puts
one back (edge stopped); ``vitrine edge reinstate DEVICE`` ends a flood cut-off early.
Each takes ``--db PATH`` (default: the configured ``db_path``).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

from .config import ConfigError, load_config
from .node import EdgeNode
from .seed import LayoutError
from .startup import StartupError


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
    if argv[:1] in (["backup"], ["restore"], ["reinstate"]):
        try:
            db_default = load_config().db_path
        except (ConfigError, OSError) as exc:
            print(f"configuration: {exc}", file=sys.stderr)
            return 2
        if argv[0] == "reinstate":
            return _reinstate(argv[1:], db_default)
        from .backup import main as backup_main

        return backup_main(argv, db_default)
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
    try:
        node = EdgeNode(cfg).start()
    except (StartupError, LayoutError) as exc:
        # One line naming the file and what to do: no traceback for an operator to decode.
        logging.getLogger("vitrine.edge").error("cannot start: %s", exc)
        return 3
    try:
        while not stop.wait(args.metrics_every or None):
            logging.getLogger("vitrine.edge.metrics").info(json.dumps(node.metrics.snapshot()))
    finally:
        node.stop()
    return 0


def _reinstate(argv: list[str], db_default: Path) -> int:
    """End a device's flood cut-off now; the running edge lifts it within seconds."""
    p = argparse.ArgumentParser(prog="vitrine edge reinstate")
    p.add_argument("device_id")
    p.add_argument("--db", type=Path, default=db_default)
    args = p.parse_args(argv)
    conn = sqlite3.connect(args.db, timeout=30)
    try:
        with conn:
            n = conn.execute("UPDATE device_cutoffs SET until = ? WHERE device_id = ? AND"
                             " reinstated_at IS NULL", (time.time(), args.device_id)).rowcount
    except sqlite3.Error as exc:
        print(f"vitrine edge reinstate: {args.db}: {exc}", file=sys.stderr)
        return 3
    finally:
        conn.close()
    if not n:
        print(f"vitrine edge reinstate: {args.device_id} is not cut off", file=sys.stderr)
        return 1
    print(json.dumps({"reinstating": args.device_id}))
    return 0
