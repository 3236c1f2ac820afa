"""Command line of the central service (``python -m central``, ``vitrine central``).

``serve`` runs a worker; ``migrate`` applies migrations and exits (deploy step);
``credential issue|revoke|list`` provisions store and channel credentials
directly in the database, which is how a new store gets its token.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from central.config import DEFAULT_PORT, default_data_dir
from central.errors import CentralError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitrine central", description=__doc__.split("\n")[0],
        epilog=f"Defaults: listens on 127.0.0.1:{DEFAULT_PORT}; without --database-url the "
               f"database is SQLite at {default_data_dir() / 'central.db'} (outside the "
               "checkout; data_dir / $VITRINE_CENTRAL_DATA_DIR or sqlite_path / "
               "$VITRINE_CENTRAL_SQLITE_PATH move it). The HTTP API is described at "
               "GET /api/v1/openapi.json.")
    parser.add_argument("--config", help="TOML config file (else $VITRINE_CENTRAL_CONFIG)")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: the SQLite file below)")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve the API (default): gunicorn, several workers")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"HTTP port (default: {DEFAULT_PORT})")
    serve.add_argument("--server", choices=["gunicorn", "werkzeug"],
                       help="gunicorn (production, the default) or werkzeug (one process, "
                            "development); else the `server` setting")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes")
    serve.add_argument("--threads", type=int, help="threads per gunicorn worker")
    sub.add_parser("migrate", help="apply database migrations and exit")
    cred = sub.add_parser("credential", help="manage store/channel credentials")
    cred.add_argument("action", choices=["issue", "revoke", "list"])
    cred.add_argument("name", nargs="?", help="store id or channel name")
    cred.add_argument("--kind", choices=["store", "channel"], default="store")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    from central import create_app
    from central.credentials import issue, list_all, revoke
    from central.server import serve, serve_gunicorn

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    override: dict[str, object] = {"database_url": args.database_url} if args.database_url else {}
    for name in ("server", "workers", "threads"):
        if getattr(args, name, None) is not None:
            override[name] = getattr(args, name)
    try:
        # Also checks the configuration and migrates, in this (master) process.
        app = create_app(override or None, config_file=args.config)
        db = app.extensions["central_db"]
        command = args.command or "serve"
        host, port = getattr(args, "host", "127.0.0.1"), getattr(args, "port", DEFAULT_PORT)
        cfg = app.config["CENTRAL"]
        if command == "serve" and cfg.server == "gunicorn":
            db.close()  # never carry a connection pool across gunicorn's fork
            serve_gunicorn(lambda: create_app(override or None, config_file=args.config),
                           host, port, cfg.workers, cfg.threads)
            return 0
        if command == "serve":
            serve(app, host, port)
            return 0
        try:
            if command == "migrate":
                print("schema up to date")
            elif args.action == "list":
                print(json.dumps(list_all(db), indent=2))
            elif not args.name:
                print("credential issue/revoke need a name", file=sys.stderr)
                return 2
            elif args.action == "issue":
                print(issue(db, args.kind, args.name))
            elif not revoke(db, args.kind, args.name):
                print(f"no active credential for {args.kind}:{args.name}", file=sys.stderr)
                return 1
            return 0
        finally:
            db.close()
    except CentralError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
