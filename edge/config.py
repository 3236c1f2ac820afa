"""The edge node's configuration, in one typed place.

Layers, later wins: built-in defaults -> a TOML file (``VITRINE_CONFIG`` or
``--config``) -> ``VITRINE_*`` environment variables -> explicit overrides
(tests, CLI flags). Secrets (broker password, loyalty keys) come from the
environment or a file outside the repository, never from defaults.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot be used."""


@dataclass
class EdgeConfig:
    store_id: str = "store-001"
    db_path: Path = Path("var/edge.db")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = "edge"
    mqtt_password: str = ""
    #: "3.1.1" or "5". Both keep a persistent session and ack after commit;
    #: 3.1.1 decodes no per-message properties (see docs/benchmarks.md).
    mqtt_protocol: str = "3.1.1"
    #: MQTT 5 Receive Maximum: QoS 1 messages the broker may have in flight to us
    #: unacknowledged. We ack only after commit, so this bounds throughput at
    #: receive_maximum / commit_time; see docs/benchmarks.md.
    receive_maximum: int = 1000
    #: Group commit: a batch is whatever arrived while the previous commit ran, at most
    #: this many messages (there is no wait: a quiet store commits each message at once).
    batch_max: int = 1000
    #: SQLite ``synchronous``: FULL survives power loss, NORMAL survives process
    #: crashes (SIGKILL) and is what the benchmarks were run with by default.
    sqlite_synchronous: str = "NORMAL"
    #: How long a write waits for another connection's write lock (the sync
    #: client's feeds, an operator's sqlite3 shell) before the batch is retried.
    #: Tests shorten it to see a held lock at once.
    sqlite_busy_timeout_s: float = 30.0
    #: Retailer loyalty keys as ``kid:hex,kid:hex``; first is current.
    loyalty_keys: str = ""
    token_leeway_s: float = 30.0
    #: A device's anonymous session ends after this much silence.
    session_gap_s: float = 90.0
    #: A kiosk's identified session ends after this much silence (the shopper walked
    #: away without pressing "I'm done"); the kiosk's own timeout usually comes first.
    kiosk_idle_s: float = 60.0
    #: Devices silent for heartbeat_s * this factor are marked stale.
    stale_factor: float = 2.5
    stale_check_s: float = 5.0
    frame_workers: int = 1
    #: Camera frames received and not yet decoded, at most (2 MiB each). When full,
    #: the MQTT thread waits: unacked messages stay at the broker (back-pressure).
    frame_queue_max: int = 8
    #: Per-device rate limit (edge/flood.py): messages per second sustained, and burst
    #: (a device replaying its own offline buffer; the broker's backlog after an edge
    #: outage is credited separately). A device that exceeds it is cut off at the broker.
    #: 0 = no limit. Burst 1,000: bench.flood measured other taps' p99 at 18 ms with it,
    #: 1.3 s with 5,000 (the flood queued ahead of them before the cut-off).
    device_rate_limit: float = 200.0
    device_burst: int = 1000
    #: How long a flooding device stays cut off before the edge reinstates it.
    flood_cutoff_s: float = 600.0
    #: Quarantine limits (edge/pipeline.py QuarantineLimits): bytes kept of a rejected
    #: payload (the rest is summarised by its SHA-256) and rows kept per device.
    quarantine_keep_bytes: int = 4096
    quarantine_device_rows: int = 1000
    #: Retention (edge/retention.py), on every edge, standalone or not. 0 = keep forever.
    events_retention_days: float = 90.0
    quarantine_retention_days: float = 30.0
    sessions_retention_days: float = 30.0
    retention_check_s: float = 60.0
    #: Bytes of live database pages the edge aims to stay under by shedding, in order:
    #: sent outbox rows, quarantine, events (rolled up into daily counts). 0 = no budget.
    disk_budget_bytes: int = 1 << 30
    #: Integrity check at start: "quick" (PRAGMA quick_check), "full" or "off".
    integrity_check: str = "quick"
    #: A start-up that hits a full disk or a locked database waits this long and retries.
    startup_retry_s: float = 5.0
    #: Run the pipeline in a child process (edge/writer_proc.py) so it uses the
    #: second core: 8,400 -> 11,600 events/s measured (docs/benchmarks.md). Off,
    #: everything runs in one process (simpler to debug, enough below ~7k/s).
    writer_process: bool = True
    publish_events: bool = True
    #: Commit notices (docs/protocol.md): each device is told, at most this often, which
    #: of its messages the edge committed, so that it can forget them. 0 = never.
    commit_notice_s: float = 0.25
    layout_path: Path | None = None
    #: Central profile service; empty = this store runs standalone (no forwarding,
    #: no feeds). The store token comes from the environment, never a file in git.
    central_url: str = ""
    store_token: str = ""
    forward_batch: int = 500
    #: Forwarder (docs/operations.md): concurrent batches, split by customer so each
    #: customer's events stay in order.
    forward_lanes: int = 2
    #: Used pages of the edge database above which the forwarder alarms (1 GiB)...
    forward_disk_budget_bytes: int = 1 << 30
    #: ...and, only if this is set, sheds the oldest unsent interest then presence rows.
    forward_shed_tracking_over_budget: bool = False
    #: Unsent interest/presence rows older than this expire (orders never do).
    forward_tracking_max_age_s: float = 30 * 86400.0
    #: Sent rows are kept this long for inspection.
    forward_sent_retention_s: float = 3 * 86400.0
    sync_catalogue_s: float = 3 * 86400.0
    sync_prices_s: float = 86400.0
    sync_stock_s: float = 60.0
    sync_erasures_s: float = 300.0
    #: The store's order changes (web orders, statuses set in central): fallback pull; an
    #: online edge is nudged by central's bridge within seconds.
    sync_orders_s: float = 60.0
    #: Address the panel listens on: ``0.0.0.0`` (or the store LAN address) for tablets.
    #: Any address other than loopback requires the TLS certificate below.
    panel_host: str = "127.0.0.1"
    #: The store manager's web panel (edge/panel/); 0 = no panel.
    panel_port: int = 8080
    #: Signs the panel's session cookies. Empty = a random key at every start (sessions
    #: then end with a restart); set it (environment, not git) to keep them across restarts.
    panel_secret_key: str = ""
    #: HTTPS for the panel: a certificate issued by the store CA the broker's TLS
    #: listener uses (``vitrine tls panel-cert``), and its key. Empty = plain HTTP,
    #: allowed on loopback only.
    panel_tls_cert: Path | None = None
    panel_tls_key: Path | None = None
    #: Worker threads of the panel's WSGI server (cheroot); each open live page holds one.
    panel_threads: int = 32
    #: The broker directory (passwd, acl, registry.json) the panel provisions devices
    #: in; empty = adding and revoking devices from the panel is off.
    panel_broker_dir: Path | None = None
    #: Reverse proxies in front of the panel whose X-Forwarded-For is trusted (0 = none:
    #: the connecting address is the client, which the login throttle keys on).
    panel_trusted_proxies: int = 0
    #: Signage and shelf labels (edge/signage_runtime.py): where the asset cache lives and
    #: its byte budget; the asset server screens fetch images from (0 = none: set it, e.g.
    #: 8081, where screens run); how long a tapped product stays on screen and how soon
    #: another one may replace it.
    assets_dir: Path | None = None  # default: "assets" next to the database
    assets_budget_mb: int = 512
    assets_host: str = "127.0.0.1"
    assets_port: int = 0
    spotlight_hold_s: float = 15.0
    spotlight_min_show_s: float = 3.0
    #: Resolver written into shelf labels' Digital Link QR codes.
    digital_link_base: str = "https://id.gs1.org"

    def loyalty_keyring(self) -> dict[str, bytes]:
        keys: dict[str, bytes] = {}
        for part in filter(None, (p.strip() for p in self.loyalty_keys.split(","))):
            kid, sep, hexkey = part.partition(":")
            if not sep:
                raise ConfigError("loyalty_keys must be 'kid:hex[,kid:hex...]'")
            try:
                keys[kid] = bytes.fromhex(hexkey)
            except ValueError:
                raise ConfigError(f"loyalty key {kid!r} is not hex") from None
        return keys


def _coerce(name: str, kind: Any, value: Any) -> Any:
    text = str(value)
    try:
        if kind in (int, "int"):
            return int(text)
        if kind in (float, "float"):
            return float(text)
        if kind in (bool, "bool"):
            if isinstance(value, bool):
                return value
            return text.lower() in ("1", "true", "yes", "on")
        if kind in (Path, "Path", "Path | None"):
            return Path(text)
    except ValueError:
        raise ConfigError(f"{name}: cannot use {value!r}") from None
    return value


def load_config(
    file: str | Path | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> EdgeConfig:
    """Build an :class:`EdgeConfig` from the layers described in the module docstring."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    file = file or env.get("VITRINE_CONFIG")
    if file:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
        values.update(data.get("edge", data))
    for f in fields(EdgeConfig):
        key = f"VITRINE_{f.name.upper()}"
        if key in env:
            values[f.name] = env[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name: f.type for f in fields(EdgeConfig)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown edge settings: {', '.join(sorted(unknown))}")
    return EdgeConfig(**{k: _coerce(k, known[k], v) for k, v in values.items()})
