"""``POST /api/v1/events``: batches of events from store edges and other channels.

Body: ``{"events": [...]}``. Each event is validated on its own; the response
says, per event id, whether it was accepted (new), a duplicate (already stored,
so a replayed batch changes nothing) or rejected (with the reason). A batch
with some bad events is still a 200: the sender marks the accepted and
duplicate ones as delivered and the rejected ones as dead letters.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify

from central.auth import require
from central.errors import BadRequest, EventRejected
from central.event_store import store_batch
from central.events import CONSENT_SKEW_S, Event, parse_event
from central.loyalty import LoyaltyLimits
from central.request_input import json_body
from contract.central_api import API_PREFIX

bp = Blueprint("ingest", __name__, url_prefix=API_PREFIX)


def parse_batch(body: Any, principal: Any, max_events: int,
                consent_skew: float = CONSENT_SKEW_S
                ) -> tuple[list[Event], list[dict[str, str]]]:
    """Split a request body into valid events and ``{"event_id", "reason"}`` rejections."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise BadRequest('body must be a JSON object {"events": [...]}')
    raw_events = body["events"]
    if len(raw_events) > max_events:
        raise BadRequest(f"at most {max_events} events per batch")
    good: list[Event] = []
    rejected: list[dict[str, str]] = []
    for index, raw in enumerate(raw_events):
        try:
            good.append(parse_event(raw, principal, consent_skew=consent_skew))
        except EventRejected as exc:
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            rejected.append({"event_id": event_id if isinstance(event_id, str) else None,
                             "index": index, "reason": str(exc)})
    return good, rejected


@bp.post("/events")
@require("store", "channel")
def ingest_events() -> Any:
    cfg = current_app.config["CENTRAL"]
    good, rejected = parse_batch(json_body(), g.principal, cfg.max_batch_events,
                                 cfg.consent_clock_skew_s)
    db = current_app.extensions["central_db"]
    limits = LoyaltyLimits(cfg.loyalty_max_points_per_entry, cfg.loyalty_max_points_per_day)
    result = db.run(lambda tx: store_batch(tx, good, g.principal, cfg.default_tracking_consent,
                                           limits=limits,
                                           present_window_s=cfg.store_points_window_s,
                                           attribution_window_s=cfg.attribution_window_s))
    return jsonify(accepted=result.accepted, duplicate=result.duplicate,
                   rejected=rejected + result.rejected)
