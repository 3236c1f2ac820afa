"""Per-device broker credentials and ACLs (``vitrine device add/revoke``).

The registry of provisioned principals (devices, the edge node, read-only
observers) is a JSON file beside the broker's password and ACL files; both of
those are regenerated from it on every change, then the broker is told to
re-read them with SIGHUP. Passwords are stored only as Mosquitto's PBKDF2-SHA512
hashes (``$7$``), so no cleartext credential ever sits on the edge disk; the
plain password is shown once, to the installer, or written to a 0600 file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from contract.kinds import ASKING_KINDS, COMMAND_FAMILY, DEVICE_KINDS
from contract.topics import (
    COMMIT_FAMILY,
    KIND_CHANNELS,
    PREFIX,
    REPLY_FAMILY,
    REQUEST_FAMILY,
    valid_id,
)

from .broker import ensure_dynsec_file

ROLES = (*DEVICE_KINDS, "edge", "observer")
PBKDF2_ITERATIONS = 101  # Mosquitto 2.0's own default for $7$ hashes.


class ProvisioningError(ValueError):
    """Bad device id, unknown kind, duplicate or missing device."""


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto 2.x ``$7$`` password hash (PBKDF2-HMAC-SHA512)."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass
class Principal:
    name: str
    role: str
    password_hash: str
    added_at: float


class Provisioner:
    """Owns ``registry.json``, ``passwd`` and ``acl`` in the broker data directory."""

    def __init__(self, data_dir: Path, store_id: str):
        if not valid_id(store_id):
            raise ProvisioningError(f"invalid store id {store_id!r}")
        self.data_dir = Path(data_dir)
        self.store_id = store_id
        self.registry_file = self.data_dir / "registry.json"
        self.password_file = self.data_dir / "passwd"
        self.acl_file = self.data_dir / "acl"
        self.pid_file = self.data_dir / "mosquitto.pid"

    # -- registry -----------------------------------------------------------
    def _load(self) -> dict[str, Principal]:
        if not self.registry_file.exists():
            return {}
        raw = json.loads(self.registry_file.read_text())
        return {name: Principal(**p) for name, p in raw["principals"].items()}

    def _save(self, principals: dict[str, Principal]) -> None:
        names = [login for p in principals.values() for login in logins(p)]
        clash = {n for n in names if names.count(n) > 1}
        if clash:
            raise ProvisioningError(f"{', '.join(sorted(clash))}: reserved for an edge's sync"
                                    " login; choose another id")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_dynsec_file(self.data_dir / "dynamic-security.json")
        data = {"store_id": self.store_id,
                "principals": {n: vars(p) for n, p in sorted(principals.items())}}
        _atomic_write(self.registry_file, json.dumps(data, indent=2) + "\n")
        _atomic_write(self.password_file, "".join(
            f"{login}:{p.password_hash}\n" for p in principals.values() for login in logins(p)))
        _atomic_write(self.acl_file, render_acl(self.store_id, principals.values()))

    def list(self) -> list[Principal]:
        return sorted(self._load().values(), key=lambda p: p.name)

    def add(self, name: str, role: str, password: str | None = None,
            *, replace: bool = False) -> str:
        """Create (or with ``replace`` rotate) a principal; return its password."""
        if not valid_id(name):
            raise ProvisioningError(f"invalid device id {name!r}")
        if role not in ROLES:
            raise ProvisioningError(f"unknown kind {role!r} (one of {', '.join(ROLES)})")
        principals = self._load()
        if name in principals and not replace:
            raise ProvisioningError(f"{name} is already provisioned (use --rotate)")
        password = password or secrets.token_urlsafe(24)
        principals[name] = Principal(name, role, hash_password(password), time.time())
        self._save(principals)
        return password

    def add_many(self, entries: list[tuple[str, str, str]]) -> None:
        """Provision many ``(name, role, password)`` at once (fleets, tests): one rewrite."""
        principals = self._load()
        for name, role, password in entries:
            if not valid_id(name) or role not in ROLES:
                raise ProvisioningError(f"bad principal {name!r}/{role!r}")
            principals[name] = Principal(name, role, hash_password(password), time.time())
        self._save(principals)

    def revoke(self, name: str) -> None:
        principals = self._load()
        if name not in principals:
            raise ProvisioningError(f"{name} is not provisioned")
        del principals[name]
        self._save(principals)

    def reload_broker(self) -> bool:
        """SIGHUP the broker named in the pid file; False if none is running."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return False
        return True


def sync_login(edge_name: str) -> str:
    """The edge's second login, for its sync client's stock-push subscription.

    Client ids are usernames (``use_username_as_clientid``), so one login holds
    one connection: the sync client must not share the edge's, or each would
    take the other's session. Same password as the edge, read-only ACL.
    """
    return f"{edge_name}-sync"


def logins(p: Principal) -> list[str]:
    return [p.name, sync_login(p.name)] if p.role == "edge" else [p.name]


def render_acl(store_id: str, principals) -> str:  # noqa: ANN001 - iterable of Principal
    """ACL text: each device writes only its own topics, reads only what its role needs.

    Public screens and shelf labels read their own commands and the edge's state,
    nothing else: ``events/#`` carries customer ids. A kiosk also asks the edge
    (``req/{id}``) and reads its own replies (``reply/{id}``). Readers only write.
    Every device writes exactly the channels of its kind (``KIND_CHANNELS``) and
    reads its own commit notices (``committed/{id}``).
    """
    base = f"{PREFIX}/{store_id}"
    out = ["# Generated by `vitrine device add/revoke` from registry.json: do not edit.", ""]
    families = sorted(set(COMMAND_FAMILY.values()))
    for p in sorted(principals, key=lambda p: p.name):
        if p.role == "edge":
            out += [f"user {p.name}",
                    f"topic read {base}/devices/#",
                    # clears retained messages a device left on another channel than state
                    f"topic write {base}/devices/#",
                    # the runtime cut-off of a flooding device (dynamic-security plugin)
                    "topic write $CONTROL/dynamic-security/v1",
                    "topic read $CONTROL/dynamic-security/v1/response",
                    f"topic read {base}/{REQUEST_FAMILY}/#",
                    f"topic write {base}/events/#",
                    f"topic write {base}/{COMMIT_FAMILY}/#",
                    f"topic write {base}/{REPLY_FAMILY}/#",
                    *(f"topic write {base}/{family}/#" for family in families),
                    f"topic readwrite {base}/edge/#", "",
                    f"user {sync_login(p.name)}",
                    f"topic read {base}/edge/sync/#", ""]
        elif p.role == "observer":
            out += [f"user {p.name}",
                    f"topic read {base}/events/#",
                    f"topic read {base}/devices/+/state",
                    f"topic read {base}/edge/state", ""]
        elif p.role in COMMAND_FAMILY:
            out += [f"user {p.name}",
                    f"topic read {base}/{COMMAND_FAMILY[p.role]}/{p.name}/cmd"]
            if p.role in ASKING_KINDS:
                out += [f"topic write {base}/{REQUEST_FAMILY}/{p.name}",
                        f"topic read {base}/{REPLY_FAMILY}/{p.name}"]
            out += [f"topic read {base}/edge/state", *_channel_lines(base, p), ""]
        elif p.role in KIND_CHANNELS:
            out += [f"user {p.name}", *_channel_lines(base, p), ""]
    out += [
        "# A device publishes only under its own id, on exactly the channels of its kind",
        "# (above), and reads its own commit notices.",
        f"pattern read {base}/{COMMIT_FAMILY}/%u",
        "",
    ]
    return "\n".join(out)


def _channel_lines(base: str, p: Principal) -> list[str]:
    return [f"topic write {base}/devices/{p.name}/{channel}"
            for channel in KIND_CHANNELS.get(p.role, ())]


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, 0600, owned like its directory.

    The broker reads these files as its own user after dropping root, so a file
    written by root (``sudo vitrine device add``) must not stay root-owned, or
    every device would be locked out at the next reload.
    """
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if os.geteuid() == 0:
        owner = path.parent.stat()
        os.chown(tmp, owner.st_uid, owner.st_gid)
    os.replace(tmp, path)
