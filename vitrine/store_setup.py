"""``vitrine store provision``: a whole store's configuration from its layout, in one step.

From the layout file (docs/protocol.md section 11) it writes, into one directory:

- ``broker/`` (or ``--broker-dir``): every device's credentials (``registry.json``, ``passwd`` with
  PBKDF2 hashes, ``acl``), plus the edge and the push bridge (role ``edge``), and
  ``broker/mosquitto.conf`` rendered by :func:`vitrine.broker.render_config` with
  the port, bind address, TLS port, user and log destination given as options;
- ``edge.toml``: the edge node's settings (store, database, broker port and
  password, loyalty keys, layout, central URL and store token when given);
- ``creds.json``: ``{device_id: password}`` for the simulator (``vitrine sim``);
- ``loyalty.key``: ``kid:hex``, the key the edge verifies tokens with and the
  simulator signs them with (generated unless ``--loyalty-keys`` is given);
- ``bridge.password``: the push bridge's broker password (``central.stock_push``);
- ``layout.json``: the layout the edge seeds from.

Secrets are written 0600 and are never printed. Running it again keeps every
password already issued (read back from ``creds.json``, ``edge.toml`` and
``bridge.password``), provisions devices added to the layout and revokes those
removed from it; ``--rotate`` issues new passwords for all.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitrine.broker import BrokerSettings, render_config
from vitrine.provisioning import Provisioner, ProvisioningError

EDGE_USER = "edge"
BRIDGE_USER = "sync-bridge"


@dataclass
class StoreFiles:
    """Where ``provision`` wrote what (under ``root``; the broker's files in ``broker_dir``)."""

    root: Path
    broker_dir_override: Path | None = None

    @property
    def broker_dir(self) -> Path:
        return self.broker_dir_override or self.root / "broker"

    @property
    def broker_conf(self) -> Path:
        return self.broker_dir / "mosquitto.conf"

    @property
    def edge_toml(self) -> Path:
        return self.root / "edge.toml"

    @property
    def creds(self) -> Path:
        return self.root / "creds.json"

    @property
    def loyalty_key(self) -> Path:
        return self.root / "loyalty.key"

    @property
    def bridge_password(self) -> Path:
        return self.root / "bridge.password"

    @property
    def layout(self) -> Path:
        return self.root / "layout.json"


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_TRUNC


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string is a JSON string


def _old_passwords(files: StoreFiles) -> dict[str, str]:
    """Passwords issued by an earlier run, so a re-run does not break running devices."""
    old: dict[str, str] = {}
    if files.creds.exists():
        old.update(json.loads(files.creds.read_text("utf-8")))
    if files.edge_toml.exists():
        edge = tomllib.loads(files.edge_toml.read_text("utf-8")).get("edge", {})
        if edge.get("mqtt_password"):
            old[EDGE_USER] = edge["mqtt_password"]
    if files.bridge_password.exists():
        old[BRIDGE_USER] = files.bridge_password.read_text("utf-8").strip()
    return old


def provision(layout_path: str | Path, root: str | Path, *, port: int = 1883,
              bind_address: str = "127.0.0.1", tls_port: int | None = None,
              broker_user: str | None = None, log_dest: str = "stderr",
              persistence: bool = True, loyalty_keys: str | None = None,
              central_url: str = "", store_token: str = "", panel_port: int = 8080,
              rotate: bool = False, broker_dir: str | Path | None = None,
              tls_dir: str | Path | None = None) -> StoreFiles:
    """Write a store's configuration under ``root``; see the module docstring."""
    from contract.layout import load_layout  # checks everything, reports all problems

    layout = load_layout(layout_path)
    files = StoreFiles(Path(root).absolute(),
                       Path(broker_dir).absolute() if broker_dir else None)
    files.root.mkdir(parents=True, exist_ok=True)
    files.broker_dir.mkdir(parents=True, exist_ok=True)
    old = {} if rotate else _old_passwords(files)

    def password(name: str) -> str:
        return old.get(name) or secrets.token_urlsafe(24)

    devices = {d.id: d.kind for d in layout.devices}
    passwords = {name: password(name) for name in [*devices, EDGE_USER, BRIDGE_USER]}
    prov = Provisioner(files.broker_dir, layout.store_id)
    ours = set(passwords)
    for principal in prov.list():  # devices taken out of the layout lose their access
        if principal.name not in ours and principal.role in devices.values():
            prov.revoke(principal.name)
    roles = {**devices, EDGE_USER: "edge", BRIDGE_USER: "edge"}
    prov.add_many([(name, roles[name], pw) for name, pw in passwords.items()])

    settings = BrokerSettings(data_dir=files.broker_dir, port=port, bind_address=bind_address,
                              tls_port=tls_port or None,
                              run_as_user=broker_user or getpass.getuser(),
                              log_dest=log_dest, persistence=persistence)
    if tls_dir:
        tls = Path(tls_dir).absolute()
        settings.tls_cafile, settings.tls_certfile, settings.tls_keyfile = (
            str(tls / "ca.crt"), str(tls / "broker.crt"), str(tls / "broker.key"))
    files.broker_conf.write_text(render_config(settings), "utf-8")

    if loyalty_keys is None:
        previous = files.loyalty_key.read_text("utf-8").strip() \
            if files.loyalty_key.exists() and not rotate else ""
        loyalty_keys = previous or f"k1:{secrets.token_hex(32)}"
    _write_secret(files.loyalty_key, loyalty_keys + "\n")
    files.layout.write_text(json.dumps(layout.to_dict(), indent=2) + "\n", "utf-8")

    edge: dict[str, Any] = {
        "store_id": layout.store_id, "db_path": str(files.root / "edge.db"),
        "mqtt_host": "127.0.0.1" if bind_address in ("0.0.0.0", "::") else bind_address,
        "mqtt_port": port, "mqtt_username": EDGE_USER,
        "mqtt_password": passwords[EDGE_USER], "loyalty_keys": loyalty_keys,
        "layout_path": str(files.layout), "panel_port": panel_port,
    }
    if central_url:
        edge["central_url"] = central_url
    if store_token:
        edge["store_token"] = store_token
    lines = ["# Written by `vitrine store provision` from " + str(Path(layout_path).name)
             + ". Secrets: keep this file 0600, out of git.", "[edge]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in edge.items()]
    if central_url and not store_token:
        lines.append("# store_token: set VITRINE_STORE_TOKEN (vitrine central credential "
                     f"issue {layout.store_id})")
    _write_secret(files.edge_toml, "\n".join(lines) + "\n")
    _write_secret(files.creds, json.dumps({d: passwords[d] for d in devices}, indent=2) + "\n")
    _write_secret(files.bridge_password, passwords[BRIDGE_USER] + "\n")
    return files


def next_steps(files: StoreFiles, store_id: str, port: int) -> list[str]:
    """One command per role, to start the store just provisioned."""
    q = shlex.quote
    return [
        f"broker:    mosquitto -c {q(str(files.broker_conf))}",
        f"edge:      vitrine edge --config {q(str(files.edge_toml))}",
        f"simulator: vitrine sim --port {port} --creds {q(str(files.creds))} "
        f"--layout {q(str(files.layout))} --loyalty-key-file {q(str(files.loyalty_key))}",
        f"bridge:    VITRINE_BRIDGE_PASSWORD=$(cat {q(str(files.bridge_password))}) "
        f"python -m central.stock_push --store {store_id} --broker-host 127.0.0.1 "
        f"--broker-port {port} --username {BRIDGE_USER} "
        "--password-env VITRINE_BRIDGE_PASSWORD",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vitrine store provision", description=__doc__.split(
        "\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("action", choices=["provision"])
    p.add_argument("--layout", required=True, help="store layout JSON (vitrine-layout/1)")
    p.add_argument("--dir", required=True, help="directory to write the store's files to")
    p.add_argument("--port", type=int, default=1883, help="broker plain listener port")
    p.add_argument("--bind", default="127.0.0.1", help="address of the plain listener")
    p.add_argument("--tls-port", type=int, default=0, help="TLS listener port, 0 = none")
    p.add_argument("--broker-dir", help="broker files (passwd, acl, persistence, pid); "
                                        "default DIR/broker")
    p.add_argument("--tls-dir", help="where ca.crt, broker.crt, broker.key are "
                                     "(default /etc/vitrine/tls)")
    p.add_argument("--broker-user", default=None,
                   help="user Mosquitto drops to (e.g. mosquitto; default: whoever runs this)")
    p.add_argument("--log-dest", default="stderr", help="Mosquitto log_dest (syslog, stderr)")
    p.add_argument("--no-persistence", action="store_true", help="broker keeps no snapshot")
    p.add_argument("--loyalty-keys", help="kid:hex (default: generated, or the one kept)")
    p.add_argument("--central-url", default="", help="central to forward to")
    p.add_argument("--store-token-env", default="VITRINE_STORE_TOKEN",
                   help="environment variable holding the store's central token, if set")
    p.add_argument("--panel-port", type=int, default=8080, help="edge web panel port")
    p.add_argument("--rotate", action="store_true", help="issue new passwords for everyone")
    args = p.parse_args(argv)
    try:
        files = provision(args.layout, args.dir, port=args.port, bind_address=args.bind,
                          tls_port=args.tls_port, broker_user=args.broker_user,
                          log_dest=args.log_dest, persistence=not args.no_persistence,
                          loyalty_keys=args.loyalty_keys, central_url=args.central_url,
                          store_token=os.environ.get(args.store_token_env, ""),
                          panel_port=args.panel_port, rotate=args.rotate,
                          broker_dir=args.broker_dir, tls_dir=args.tls_dir)
    except (ProvisioningError, ValueError, OSError) as exc:
        print(f"vitrine store: {exc}", file=sys.stderr)
        return 2
    store_id = json.loads(files.layout.read_text("utf-8"))["store_id"]
    n = len(json.loads(files.creds.read_text("utf-8")))
    print(f"store {store_id}: {n} devices, the edge and the push bridge provisioned in "
          f"{files.root}")
    for line in next_steps(files, store_id, args.port):
        print("  " + line)
    return 0
