"""The store CA and the certificates it issues: broker TLS listener and panel HTTPS.

One CA per store (``/etc/vitrine/tls/ca.crt``), made once by the installer,
signs the broker's LAN listener and the panel, so a tablet that trusts the
store CA reaches both. Made with the ``openssl`` command line exactly as
``broker_config/README.md`` describes (the broker's TLS test does the same),
so there is one procedure to audit. ``vitrine tls ca DIR`` and
``vitrine tls panel-cert DIR --host ...`` wrap it; the demo calls them too.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


class TlsError(RuntimeError):
    """openssl failed or is missing."""


@dataclass(frozen=True)
class ServerCert:
    cert: Path
    key: Path
    ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    try:
        out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=120)
    except FileNotFoundError:
        raise TlsError("openssl is not installed (apt-get install openssl)") from None
    if out.returncode != 0:
        raise TlsError(f"openssl {args[0]}: {out.stderr.strip()[-500:]}")


def make_ca(directory: Path, days: int = 3650, bits: int = 3072) -> Path:
    """Create ``ca.crt``/``ca.key`` in ``directory`` unless they exist; return ``ca.crt``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = directory / "ca.crt"
    if ca.exists() and (directory / "ca.key").exists():
        return ca
    _openssl("req", "-x509", "-newkey", f"rsa:{bits}", "-sha256", "-days", str(days), "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Vitrine store CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    os.chmod(directory / "ca.key", 0o600)
    return ca


def _san(hosts: list[str]) -> str:
    parts = []
    for h in hosts:
        try:
            ipaddress.ip_address(h)
            parts.append(f"IP:{h}")
        except ValueError:
            parts.append(f"DNS:{h}")
    return ",".join(parts)


def issue_server_cert(directory: Path, name: str, hosts: list[str], days: int = 825,
                      bits: int = 2048) -> ServerCert:
    """A server certificate ``{name}.crt``/``{name}.key`` signed by the CA in ``directory``.

    ``hosts`` are the names and addresses clients will type (tablets: the edge's LAN
    address); each becomes a subjectAltName, which is what browsers check.
    """
    if not hosts:
        raise TlsError("at least one host name or address is needed")
    if not (directory / "ca.key").exists():
        raise TlsError(f"no store CA in {directory}: run `vitrine tls ca {directory}` first")
    _openssl("req", "-newkey", f"rsa:{bits}", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN={hosts[0]}", cwd=directory)
    (directory / f"{name}.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={_san(hosts)}\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", str(days), "-sha256",
             "-extfile", f"{name}.ext", cwd=directory)
    os.chmod(directory / f"{name}.key", 0o600)
    return ServerCert(directory / f"{name}.crt", directory / f"{name}.key",
                      directory / "ca.crt")


def main(argv: list[str]) -> int:
    """``vitrine tls ca DIR`` | ``vitrine tls panel-cert DIR --host H [--host H...]``."""
    p = argparse.ArgumentParser(prog="vitrine tls", description=__doc__)
    sub = p.add_subparsers(dest="action", required=True)
    ca = sub.add_parser("ca", help="create the store CA (kept if it exists)")
    ca.add_argument("dir", type=Path)
    pc = sub.add_parser("panel-cert", help="issue the panel's HTTPS certificate")
    pc.add_argument("dir", type=Path)
    pc.add_argument("--host", action="append", required=True,
                    help="a name or address tablets use (repeat)")
    args = p.parse_args(argv)
    try:
        if args.action == "ca":
            print(make_ca(args.dir))
        else:
            cert = issue_server_cert(args.dir, "panel", args.host)
            print(f"panel_tls_cert = \"{cert.cert}\"\npanel_tls_key = \"{cert.key}\"")
    except TlsError as exc:
        print(f"vitrine tls: {exc}", file=sys.stderr)
        return 2
    return 0
