"""Typed configuration of the central service, resolved in one place.

Precedence, lowest to highest: the defaults below, an optional TOML file
(``VITRINE_CENTRAL_CONFIG`` or ``--config``), ``VITRINE_CENTRAL_<FIELD>``
environment variables, then the ``test_config`` mapping given to
:func:`central.create_app`. Every knob lives in :class:`CentralConfig` so the
operator has one list to read, and a typo in a key is an error, not a silent
default.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from central.errors import ConfigError

ENV_PREFIX = "VITRINE_CENTRAL_"

#: Where central listens unless told otherwise (``vitrine central serve --port``).
DEFAULT_PORT = 8800


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/vitrine/central``, else ``~/.local/share/vitrine/central``: outside
    any checkout, so a ``git clean`` or a fresh clone never takes the customer database
    with it."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vitrine" / "central"


#: Sources of profile fields, most trusted first (the CRM is the system of record).
DEFAULT_SOURCE_PRIORITY = ["crm", "web", "app", "call_centre", "store", "kiosk"]


def _default_survivorship() -> dict[str, dict[str, Any]]:
    return {
        "name": {"rule": "source_priority", "sources": list(DEFAULT_SOURCE_PRIORITY)},
        "email": {"rule": "most_recent"},
        "phone": {"rule": "most_complete"},
    }


@dataclass
class CentralConfig:
    """All settings of one central worker. Workers sharing a database share a config."""

    #: PostgreSQL URL (``postgresql://...``); when unset, SQLite at :attr:`sqlite_path`.
    database_url: str | None = None
    #: Where central keeps its files (the SQLite database); outside the checkout.
    data_dir: str = field(default_factory=lambda: str(default_data_dir()))
    #: SQLite file; empty = ``{data_dir}/central.db``. A relative path resolves against
    #: the current directory.
    sqlite_path: str = ""
    #: Bearer token of the admin API (credentials, privacy). Unset: admin API disabled.
    admin_token: str | None = None
    #: Tracking consent of a customer never asked. False: privacy by default.
    default_tracking_consent: bool = False
    #: Interest scores halve every this many days without a new tap/scan.
    interest_half_life_days: float = 14.0
    #: Interest events older than this are ignored when scoring.
    interest_window_days: float = 180.0
    #: An interest event in a zone is attributed to every item the zone's screens showed
    #: within this many seconds before it (or were showing then): proof of play, N.
    attribution_window_s: float = 30.0
    #: Entries shown in the profile timeline.
    timeline_limit: int = 50
    #: Largest batch accepted by ``POST /api/v1/events``.
    max_batch_events: int = 2000
    #: Largest request body, bytes (a 2000-event batch is ~1 MB).
    max_body_bytes: int = 8 * 1024 * 1024
    #: Store that fulfils home deliveries not assigned to a store.
    home_delivery_store: str = "web-warehouse"
    #: Connections per worker when on PostgreSQL.
    pg_pool_min: int = 1
    pg_pool_max: int = 8
    #: A store token sees a customer's summary only if the customer identified in that
    #: store (with tracking consent) within this many days.
    store_profile_window_days: float = 30.0
    #: A store reads a member's points balance (nothing else) for this long after the
    #: member showed their card there, with or without tracking consent.
    store_points_window_s: float = 3600.0
    #: Customer lookups (profile reads) per minute and token, all workers together.
    store_lookups_per_minute: int = 120
    channel_lookups_per_minute: int = 6000
    #: Largest loyalty ledger entry (points, either direction), and the most points
    #: one customer may be credited per rolling 24 h, all sources together.
    loyalty_max_points_per_entry: int = 5000
    loyalty_max_points_per_day: int = 20000
    #: How far ahead of central's clock a consent decision may be dated (clock skew).
    consent_clock_skew_s: float = 300.0
    #: Anonymous kiosk orders a store may take per rolling 24 h for pickup in *another*
    #: store (central/orders.py, "orders taken for another store"); over it: 429, retried.
    taken_anonymous_orders_per_day: int = 200
    #: ``vitrine central serve``: ``gunicorn`` (production) or ``werkzeug`` (development).
    server: str = "gunicorn"
    #: gunicorn worker processes and threads per worker.
    workers: int = 4
    threads: int = 4
    #: Per profile field: ``{"rule": "source_priority"|"most_recent"|"most_complete",
    #: "sources": [...]}``. Fields not listed use ``most_recent``.
    survivorship: dict[str, dict[str, Any]] = field(default_factory=_default_survivorship)

    @property
    def sqlite_file(self) -> Path:
        """The SQLite database file these settings name."""
        return Path(self.sqlite_path or Path(self.data_dir) / "central.db").absolute()

    def validate(self) -> CentralConfig:
        from central.survivorship import check_rules

        url = self.database_url
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"database_url must be a postgresql:// URL, got {url!r}")
        for name in ("timeline_limit", "max_batch_events", "max_body_bytes", "pg_pool_max",
                     "store_lookups_per_minute", "channel_lookups_per_minute",
                     "loyalty_max_points_per_entry", "loyalty_max_points_per_day", "workers",
                     "threads", "taken_anonymous_orders_per_day"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.server not in ("gunicorn", "werkzeug"):
            raise ConfigError(f"server must be gunicorn or werkzeug, got {self.server!r}")
        for name in ("store_profile_window_days", "consent_clock_skew_s",
                     "store_points_window_s"):
            if not 0 <= getattr(self, name) < 1e9:
                raise ConfigError(f"{name} must be >= 0")
        if not 0 <= self.attribution_window_s <= 3600:
            raise ConfigError("attribution_window_s must be between 0 and 3600")
        if self.interest_half_life_days <= 0:
            raise ConfigError("interest_half_life_days must be > 0")
        check_rules(self.survivorship)
        return self


_FIELDS = {f.name: f for f in dataclasses.fields(CentralConfig)}


def _coerce(name: str, raw: Any) -> Any:
    """Convert a TOML/env/override value to the field's type; env values arrive as text."""
    kind = str(_FIELDS[name].type)
    try:
        if kind == "bool":
            if isinstance(raw, str):
                low = raw.strip().lower()
                if low not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError(raw)
                return low in {"1", "true", "yes", "on"}
            return bool(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("dict"):
            value = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(value, dict):
                raise ValueError("expected a mapping")
            return value
        if raw is None or raw == "":
            return None if "None" in kind else ""
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad value for {name}: {raw!r} ({exc})") from None


def _apply(values: dict[str, Any], layer: Mapping[str, Any], origin: str) -> None:
    for key, raw in layer.items():
        name = key.lower()
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {key!r} in {origin}")
        values[name] = _coerce(name, raw)


def load_config(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    override: Mapping[str, Any] | None = None,
) -> CentralConfig:
    """Resolve defaults -> file -> environment -> override into a validated config."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        _apply(values, data.get("central", data), str(path))
    _apply(values, {k[len(ENV_PREFIX):]: v for k, v in env.items()
                    if k.startswith(ENV_PREFIX) and k != ENV_PREFIX + "CONFIG"}, "environment")
    if override:
        _apply(values, override, "test_config")
    return CentralConfig(**values).validate()
