"""``python -m central.feeds load <catalogue|prices|stock> FILE [--database-url URL]``.

Loads a JSON file ``{"items": [...], "delete": [...]}`` straight into the
database (same validation as ``PUT /api/v1/admin/feeds/<feed>``): how a nightly
ERP export reaches the stores without going through HTTP.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from central.errors import CentralError


def main(argv: Sequence[str] | None = None) -> int:
    from central import create_app
    from central.feeds.api import load
    from central.feeds.model import FEEDS

    parser = argparse.ArgumentParser(prog="python -m central.feeds", description=__doc__)
    parser.add_argument("action", choices=["load"])
    parser.add_argument("feed", choices=sorted(FEEDS))
    parser.add_argument("file")
    parser.add_argument("--config", help="TOML config file (else $VITRINE_CENTRAL_CONFIG)")
    parser.add_argument("--database-url", help="PostgreSQL URL (else SQLite)")
    args = parser.parse_args(argv)
    override = {"database_url": args.database_url} if args.database_url else None
    try:
        with open(args.file, encoding="utf-8") as fh:
            body = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    try:
        app = create_app(override, config_file=args.config)
        db = app.extensions["central_db"]
        try:
            version = load(db, args.feed, body)
        finally:
            db.close()
    except CentralError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"feed": args.feed, "version": version}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
