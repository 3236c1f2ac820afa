"""Render the store broker's configuration and run it.

One renderer produces both the committed production file
(``broker_config/mosquitto.conf``, checked by a test) and the throw-away
configurations of the demo and the test suite, so what is tested is what is
shipped: authentication on, ACL file, persistence, TCP_NODELAY and the queue
limits below. When the ``mosquitto`` binary is missing, :func:`start_broker`
falls back to the embedded pure-Python broker (amqtt) and says so in the log.
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("vitrine.broker")


@dataclass
class BrokerSettings:
    """Every knob of the store broker, with the values chosen for a store edge."""

    data_dir: Path
    port: int = 1883
    bind_address: str = "127.0.0.1"
    #: LAN listener with TLS, for devices that are not on the edge host itself.
    tls_port: int | None = None
    tls_cafile: str = "/etc/vitrine/tls/ca.crt"
    tls_certfile: str = "/etc/vitrine/tls/broker.crt"
    tls_keyfile: str = "/etc/vitrine/tls/broker.key"
    #: Per-client QoS 1 messages in flight towards one subscriber. The edge acks
    #: only after its SQLite commit, so throughput <= inflight / commit time:
    #: 1000 in flight over a ~5 ms group commit allows ~200k msg/s, far above need.
    max_inflight_messages: int = 1000
    #: Messages queued for an offline persistent session (the edge restarting,
    #: a kiosk rebooting). 200k covers a 10-minute edge outage at a busy store's
    #: peak (~300 events/s); beyond it Mosquitto drops, so it is logged loudly.
    max_queued_messages: int = 200_000
    #: Bytes queued per client, the memory ceiling of the above (0 = unbounded).
    max_queued_bytes: int = 256 * 1024 * 1024
    #: Biggest packet: a camera frame (2 MiB base64-encoded JSON) plus headers.
    max_packet_size: int = 3 * 1024 * 1024
    persistence: bool = True
    #: Seconds between persistence snapshots. Mosquitto's persistence is a
    #: periodic snapshot, not a log: see docs/operations.md for what that means.
    autosave_interval: int = 10
    persistent_client_expiration: str = "14d"
    log_dest: str = "stderr"
    #: Unix user Mosquitto runs as once started. Mosquitto started as root drops
    #: to ``mosquitto`` by default; demo and tests keep the invoking user so the
    #: data directory stays theirs. Production uses the packaged ``mosquitto`` user.
    run_as_user: str | None = field(default_factory=lambda: getpass.getuser())
    #: Mosquitto's dynamic-security plugin, loaded beside the password and ACL files
    #: only as the edge's runtime cut-off for a flooding device (see
    #: broker_config/README.md). None: no plugin (the edge then only logs floods).
    dynsec_plugin: str | None = field(default_factory=lambda: dynsec_plugin_path())
    extra: list[str] = field(default_factory=list)

    @property
    def password_file(self) -> Path:
        return self.data_dir / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.data_dir / "acl"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "mosquitto.pid"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    @property
    def dynsec_file(self) -> Path:
        return self.data_dir / "dynamic-security.json"


#: Where Debian and upstream builds install the dynamic-security plugin.
DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
#: The plugin's state before the edge has cut anyone off: no clients, so it defers
#: every login and every ACL check to ``password_file`` and ``acl_file``.
EMPTY_DYNSEC = ('{"defaultACLAccess": {"publishClientSend": false, "publishClientReceive": '
                'false, "subscribe": false, "unsubscribe": false}, "clients": [], '
                '"groups": [], "roles": []}\n')


def dynsec_plugin_path() -> str | None:
    """The dynamic-security plugin of the installed Mosquitto, if there is one."""
    return next((p for p in DYNSEC_PLUGIN_PATHS if os.path.exists(p)), None)


def ensure_dynsec_file(path: Path) -> None:
    """Create the plugin's state file when missing (the plugin refuses to start without)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(EMPTY_DYNSEC)
        if os.geteuid() == 0:
            owner = path.parent.stat()
            os.chown(path, owner.st_uid, owner.st_gid)


def render_config(s: BrokerSettings) -> str:
    """Mosquitto 2.0 configuration text for ``s``."""
    lines = [
        "# Vitrine store broker (Mosquitto 2.x). Generated by vitrine.broker.render_config;",
        "# see broker_config/README.md for the reasoning behind each value.",
        "per_listener_settings false",
        *([f"user {s.run_as_user}"] if s.run_as_user else []),
        "allow_anonymous false",
        f"password_file {s.password_file}",
        f"acl_file {s.acl_file}",
        f"pid_file {s.pid_file}",
    ]
    if s.dynsec_plugin:
        lines += [
            "",
            "# The edge's runtime cut-off for a flooding device: it holds only the devices",
            "# the edge disabled, and defers every other login and ACL check to the files.",
            f"plugin {s.dynsec_plugin}",
            f"plugin_opt_config_file {s.dynsec_file}",
        ]
    lines += [
        "",
        "# Plain listener, reachable from the edge host only.",
        f"listener {s.port} {s.bind_address}",
        "protocol mqtt",
        "# The client id is the username: nobody can take another principal's session.",
        "use_username_as_clientid true",
    ]
    if s.tls_port:
        lines += [
            "",
            "# TLS listener for devices on the store LAN.",
            f"listener {s.tls_port}",
            "protocol mqtt",
            "use_username_as_clientid true",
            f"cafile {s.tls_cafile}",
            f"certfile {s.tls_certfile}",
            f"keyfile {s.tls_keyfile}",
            "tls_version tlsv1.2",
        ]
    lines += [
        "",
        "# Latency: without this, QoS 1 round trips cost 20-40 ms (Nagle + delayed ACK).",
        "set_tcp_nodelay true",
        "",
        "# Flow control and queues.",
        f"max_inflight_messages {s.max_inflight_messages}",
        f"max_queued_messages {s.max_queued_messages}",
        f"max_queued_bytes {s.max_queued_bytes}",
        f"max_packet_size {s.max_packet_size}",
        "",
        "# Durability.",
        f"persistence {'true' if s.persistence else 'false'}",
        f"persistence_location {s.data_dir}/",
        f"autosave_interval {s.autosave_interval}",
        f"persistent_client_expiration {s.persistent_client_expiration}",
        "",
        f"log_dest {s.log_dest}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    lines += s.extra
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.02)


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class BrokerProcess:
    """A running Mosquitto (or embedded broker) bound to :class:`BrokerSettings`."""

    def __init__(self, settings: BrokerSettings, proc: subprocess.Popen[bytes], embedded: bool):
        self.settings = settings
        self.proc = proc
        self.embedded = embedded

    @property
    def port(self) -> int:
        return self.settings.port

    def reload(self) -> None:
        """Re-read password and ACL files (SIGHUP), as ``vitrine device add`` does."""
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def start_broker(
    settings: BrokerSettings,
    *,
    log_file: Path | None = None,
    allow_embedded: bool = True,
    timeout: float = 10.0,
) -> BrokerProcess:
    """Write the config and start the broker; return once it accepts connections."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for f in (settings.password_file, settings.acl_file):
        if not f.exists():
            f.touch(mode=0o600)
    if settings.dynsec_plugin:
        ensure_dynsec_file(settings.dynsec_file)
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    binary = mosquitto_binary()
    if binary:
        settings.config_file.write_text(render_config(settings))
        # Own session: a Ctrl-C meant for the demo must not kill the broker before
        # the devices have flushed and the edge has committed; the caller stops it.
        proc = subprocess.Popen([binary, "-c", str(settings.config_file)], stdout=out,
                                stderr=out, start_new_session=True)
        embedded = False
        log.info("mosquitto %s on port %d (config %s)", binary, settings.port, settings.config_file)
    elif allow_embedded:
        import importlib.util
        import sys

        if importlib.util.find_spec("amqtt") is None:
            raise FileNotFoundError("neither mosquitto (apt-get install mosquitto) nor the"
                                    " embedded broker (pip install 'vitrine[embedded-broker]')"
                                    " is installed")
        log.warning(
            "mosquitto is not installed: using the EMBEDDED pure-Python broker (amqtt) on port %d."
            " Fine for a demo (MQTT 3.1.1 only, nothing persisted); install mosquitto for"
            " production (apt-get install mosquitto).",
            settings.port,
        )
        if settings.tls_port:
            log.warning("the embedded broker has no TLS listener: tls_port %d ignored",
                        settings.tls_port)
        proc = subprocess.Popen(
            [sys.executable, "-m", "vitrine.embedded_broker", str(settings.data_dir),
             str(settings.port)],
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        embedded = True
    else:
        raise FileNotFoundError("mosquitto binary not found (apt-get install mosquitto)")
    try:
        wait_for_port(settings.port, timeout=timeout)
    except TimeoutError:
        proc.kill()
        raise
    if proc.poll() is not None:
        raise RuntimeError(f"broker exited with {proc.returncode}")
    return BrokerProcess(settings, proc, embedded)
