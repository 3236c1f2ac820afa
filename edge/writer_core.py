"""The parts that write: built once, wherever the SQLite write connection lives.

The edge node builds them in-process (``writer_process = false``) and the
writer process builds them in the child; one function, so the two modes
cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from .catalogue import Catalogue
from .config import EdgeConfig
from .housekeeping import Housekeeper
from .identity import Identifier
from .kiosk_service import KioskService
from .metrics import Metrics
from .pipeline import Pipeline, QuarantineLimits
from .registry import Registry
from .request_ops import register_ops
from .requests import RequestRouter
from .retention import Retention, RetentionPolicy
from .sessions import Sessions


@dataclass
class WriterCore:
    catalogue: Catalogue
    registry: Registry
    pipeline: Pipeline
    housekeeper: Housekeeper
    #: Answers devices' requests in the same process, on the same connection.
    requests: RequestRouter


def build_writer_core(cfg: EdgeConfig, db: sqlite_utils.Database,
                      metrics: Metrics) -> WriterCore:
    catalogue = Catalogue(db)
    registry = Registry(cfg.stale_factor)
    sessions = Sessions(db.conn, cfg.session_gap_s, cfg.kiosk_idle_s)
    pipeline = Pipeline(db, cfg.store_id, catalogue=catalogue,
                        identifier=Identifier(cfg.loyalty_keyring(), cfg.token_leeway_s),
                        sessions=sessions, registry=registry, metrics=metrics,
                        quarantine_limits=QuarantineLimits(cfg.quarantine_keep_bytes,
                                                           cfg.quarantine_device_rows))
    router = RequestRouter(cfg.store_id, db.conn, catalogue, on_rollback=pipeline.reload_state)
    register_ops(router, catalogue, sessions)
    KioskService(cfg.store_id, central_link=bool(cfg.central_url)).register(router)
    retention = Retention(db.conn, RetentionPolicy(
        cfg.events_retention_days, cfg.quarantine_retention_days, cfg.sessions_retention_days,
        cfg.disk_budget_bytes, standalone=not cfg.central_url))
    return WriterCore(catalogue, registry, pipeline,
                      Housekeeper(db.conn, catalogue, registry, pipeline, retention,
                                  cfg.retention_check_s), router)
