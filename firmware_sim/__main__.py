"""Run a simulated store: ``python -m firmware_sim --creds creds.json --speed 20 --duration 60``.

Prints one line per thing that happens (a shopper enters, taps, scans, a device
loses its network...) and a summary at the end. The loyalty key signs the
simulated customers' tokens; it must be the key the edge verifies with. When
none is given a random one is generated and printed, so that a demo never
relies on a key committed to the repository.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
from pathlib import Path

from firmware_sim.faults import PRESETS, parse_faults
from firmware_sim.fleet import Fleet
from firmware_sim.layout import DEMO_LAYOUT, load_layout

KEY_ENV = "VITRINE_LOYALTY_KEY_HEX"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m firmware_sim", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--cafile", help="CA certificate: connect with TLS (store LAN listener)")
    p.add_argument("--layout", default=str(DEMO_LAYOUT), help="store layout JSON")
    p.add_argument("--store-id", help="override the layout's store id")
    p.add_argument("--creds", required=True, help="JSON file {device_id: password}")
    p.add_argument("--loyalty-key-hex", default=os.environ.get(KEY_ENV),
                   help=f"retailer loyalty HMAC key, hex (default: ${KEY_ENV}, else random)")
    p.add_argument("--loyalty-key-id", default="k1")
    p.add_argument("--loyalty-key-file",
                   help="file holding kid:hex (what `vitrine store provision` writes); "
                        "overrides --loyalty-key-hex and --loyalty-key-id")
    p.add_argument("--speed", type=float, default=20.0, help="shopper time compression")
    p.add_argument("--rate", type=float, help="target device events per second")
    p.add_argument("--duration", type=float, default=60.0, help="seconds to run, 0 = forever")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--faults", default="default",
                   help=f"preset ({', '.join(PRESETS)}), optionally with overrides, "
                        "e.g. default,garbage_rate=0.1")
    p.add_argument("--heartbeat-s", type=float, default=30.0)
    p.add_argument("--log-level", default="ERROR", help="device/transport logging level")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.loyalty_key_file:
        text = Path(args.loyalty_key_file).read_text("utf-8")
        first = text.strip().split(",")[0]
        args.loyalty_key_id, _, hexkey = first.partition(":")
        key = bytes.fromhex(hexkey)
    elif args.loyalty_key_hex:
        key = bytes.fromhex(args.loyalty_key_hex)
    else:
        key = secrets.token_bytes(32)
        print(f"generated loyalty key for this run: {args.loyalty_key_id}:{key.hex()}"
              " (give the edge the same key)", file=sys.stderr)
    fleet = Fleet(load_layout(args.layout), creds=args.creds, loyalty_key=key,
                  loyalty_key_id=args.loyalty_key_id, host=args.host, port=args.port,
                  store_id=args.store_id, speed=args.speed, rate=args.rate, seed=args.seed,
                  faults=parse_faults(args.faults), on_story=lambda s: print(s, flush=True),
                  device_options={"heartbeat_s": args.heartbeat_s, "cafile": args.cafile})
    signal.signal(signal.SIGTERM, lambda *_: fleet.stop())  # systemd/docker stop: flush, exit
    connected = fleet.start(wait=10.0)
    print(f"{connected}/{len(fleet.devices)} devices connected to {args.host}:{args.port}",
          flush=True)
    try:
        stats = fleet.run(args.duration if args.duration > 0 else float("inf"))
    except KeyboardInterrupt:
        stats = fleet.stats
    finally:
        flushed = fleet.close()
    print("summary: " + ", ".join(f"{k}={v}" for k, v in sorted(stats.items())), flush=True)
    if not flushed:
        print("warning: some messages were not acknowledged before exit", file=sys.stderr)
    return 0 if connected else 1


if __name__ == "__main__":
    sys.exit(main())
