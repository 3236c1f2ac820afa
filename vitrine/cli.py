"""``vitrine``: one command for every running part of a store.

    vitrine edge ...            the store's edge node
    vitrine sim ...             simulated devices and shoppers
    vitrine demo                a whole simulated store on embedded defaults
    vitrine store provision ...          a whole store's credentials and configs from its layout
    vitrine device add|revoke|list ...   per-device broker credentials and ACL
    vitrine broker config|run   the store broker's configuration
    vitrine tls ca|panel-cert   the store CA and the panel's HTTPS certificate
    vitrine central ...         the central customer profile service
    vitrine kiosk --kiosk ID    a touch kiosk (Kivy), logged in as its device
    vitrine signage play|playlist|render ...   signage screens and their playlists
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from vitrine.provisioning import DEVICE_KINDS, ROLES, Provisioner, ProvisioningError


def _device(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="vitrine device")
    p.add_argument("--broker-dir", default="/var/lib/vitrine/broker",
                   help="where passwd, acl and registry.json live")
    p.add_argument("--store-id", default="store-001")
    p.add_argument("--edge-db", help="also register the device in this edge database")
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="create credentials and ACL for a device, reload broker")
    add.add_argument("device_id")
    add.add_argument("--kind", required=True, choices=ROLES)
    add.add_argument("--zone")
    add.add_argument("--shelf")
    add.add_argument("--rotate", action="store_true", help="replace existing credentials")
    add.add_argument("--password-file", help="write the password here (0600) instead of stdout")
    rev = sub.add_parser("revoke", help="remove a device's credentials, reload broker")
    rev.add_argument("device_id")
    sub.add_parser("list")
    args = p.parse_args(argv)
    prov = Provisioner(Path(args.broker_dir), args.store_id)
    try:
        if args.action == "add":
            password = prov.add(args.device_id, args.kind, replace=args.rotate)
            if args.edge_db and args.kind in DEVICE_KINDS:
                from edge.db import connect, migrate
                from edge.seed import register_device

                db = connect(args.edge_db)
                migrate(db)
                register_device(db, args.device_id, args.kind, args.zone, args.shelf)
            if args.password_file:
                fd = os.open(args.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with open(fd, "w") as f:
                    f.write(password + "\n")
            else:
                print(json.dumps({"device_id": args.device_id, "username": args.device_id,
                                  "password": password}))
        elif args.action == "revoke":
            prov.revoke(args.device_id)
        else:
            for pr in prov.list():
                print(f"{pr.name}\t{pr.role}")
            return 0
    except ProvisioningError as exc:
        print(f"vitrine device: {exc}", file=sys.stderr)
        return 2
    reloaded = prov.reload_broker()
    print(f"broker {'reloaded' if reloaded else 'not running: files updated only'}",
          file=sys.stderr)
    return 0


def _broker(argv: list[str]) -> int:
    """``config`` prints the broker configuration; ``run`` writes it and runs Mosquitto on it.

    The options cover what differs between installations (a second store on one host, a
    non-root test, logs to a file), so nobody edits the generated file by hand.
    """
    from vitrine.broker import mosquitto_binary, render_config

    p = argparse.ArgumentParser(prog="vitrine broker")
    p.add_argument("action", choices=["config", "run"],
                   help="config: print mosquitto.conf; run: write it to DATA_DIR and run "
                        "mosquitto on it in the foreground")
    p.add_argument("--data-dir", default="/var/lib/vitrine/broker")
    p.add_argument("--port", type=int, default=1883,
                   help="plain listener port (bound to 127.0.0.1)")
    p.add_argument("--tls-port", type=int, default=8883, help="TLS listener port; 0 = none")
    p.add_argument("--user", default="mosquitto",
                   help="user Mosquitto runs as after starting as root; '' = the invoking "
                        "user (a test, a second store run by hand)")
    p.add_argument("--log-dest", default="syslog",
                   help="Mosquitto log_dest: syslog, stderr, stdout, or 'file PATH'")
    args = p.parse_args(argv)
    # Mosquitto started as root drops to `mosquitto` unless told otherwise, so "the
    # invoking user" has to be written out, not left implicit.
    user = args.user or getpass.getuser()
    settings = production_settings(Path(args.data_dir), args.tls_port or None, port=args.port,
                                   user=user, log_dest=args.log_dest)
    text = render_config(settings)
    if args.action == "config":
        print(text, end="")
        return 0
    binary = mosquitto_binary()
    if binary is None:
        print("vitrine broker run: mosquitto is not installed (apt-get install mosquitto)",
              file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for f in (settings.password_file, settings.acl_file):
        if not f.exists():
            f.touch(mode=0o600)
    settings.config_file.write_text(text)
    print(f"vitrine broker run: {binary} -c {settings.config_file}", file=sys.stderr)
    os.execv(binary, [binary, "-c", str(settings.config_file)])
    return 0  # not reached: exec replaced this process


def production_settings(data_dir: Path = Path("/var/lib/vitrine/broker"),
                        tls_port: int | None = 8883, *, port: int = 1883,
                        user: str | None = "mosquitto", log_dest: str = "syslog"):
    from vitrine.broker import DYNSEC_PLUGIN_PATHS, BrokerSettings, dynsec_plugin_path

    # The installed plugin's path, or Debian's amd64 one (what the committed file shows).
    return BrokerSettings(data_dir=data_dir, port=port, tls_port=tls_port,
                          run_as_user=user, log_dest=log_dest,
                          dynsec_plugin=dynsec_plugin_path() or DYNSEC_PLUGIN_PATHS[0])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "edge":
        from edge.cli import main as edge_main

        return edge_main(rest)
    if command == "sim":
        from firmware_sim.__main__ import main as sim_main

        return sim_main(rest)
    if command == "demo":
        from vitrine.demo import main as demo_main

        return demo_main(rest)
    if command == "store":
        from vitrine.store_setup import main as store_main

        return store_main(rest)
    if command == "device":
        return _device(rest)
    if command == "broker":
        return _broker(rest)
    if command == "tls":
        from vitrine.tls import main as tls_main

        return tls_main(rest)
    if command == "kiosk":
        from kiosk.cli import main as kiosk_main

        return kiosk_main(rest)
    if command == "signage":
        from edge.signage_service import load_playlist_file
        from signage.cli import main as signage_main

        return signage_main(rest, load_into_edge=load_playlist_file)
    if command == "central":
        from central.cli import main as central_main

        return central_main(rest)
    print(f"vitrine: unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2
