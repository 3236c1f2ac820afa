"""Devices: live state, telemetry, firmware, last seen, flood cut-off; add and revoke.

The state a manager reads is the *effective* one (:data:`edge.analytics.EFFECTIVE_STATE`):
a device that never sent anything is "never seen" and a silent one "stale",
never "ok". Adding a device reuses :class:`vitrine.provisioning.Provisioner`'s
files through the same code path as ``vitrine device add`` (credentials and ACL
in the broker directory, broker reloaded with SIGHUP), registers it in the edge
database, and shows its password once, in the response to that POST only. The
panel refuses edge and observer principals: those are installer decisions.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from contract.kinds import DEVICE_KINDS
from contract.topics import valid_id
from edge.analytics import EFFECTIVE_STATE

from . import fmt_duration
from .db import read_db, write_db
from .i18n import gettext as _
from .roles import MANAGER, requires

bp = Blueprint("devices", __name__, url_prefix="/devices")
log = logging.getLogger("vitrine.edge.panel")
#: What the panel may provision: shop-floor devices, never ``edge`` or ``observer``.
PANEL_KINDS = DEVICE_KINDS


def device_states(conn: sqlite3.Connection) -> dict[str, str]:
    """``{device_id: online|offline|stale|never_seen}`` for the live stream."""
    return {r[0]: r[1] for r in conn.execute(
        f"SELECT device_id, {EFFECTIVE_STATE} FROM devices ORDER BY device_id")}


def _provisioner() -> Any:
    """The broker's provisioner, or None when the panel may not provision."""
    broker_dir = current_app.config.get("BROKER_DIR")
    if not broker_dir:
        return None
    # The panel is a tool of the installation, like ``vitrine device``: same code path.
    from vitrine.provisioning import Provisioner

    return Provisioner(Path(broker_dir), current_app.config["STORE_ID"])


def _rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    # A device cut off for flooding (edge/flood.py) shows until when and what was dropped.
    return conn.execute(
        f"SELECT d.device_id, kind, zone, shelf, fw, state, heartbeat_s, last_seen, stale,"
        f" clock_faults, last_bad_ts, {EFFECTIVE_STATE} AS status, c.until AS cut_until,"
        " c.dropped AS cut_dropped FROM devices d LEFT JOIN device_cutoffs c"
        " ON c.device_id = d.device_id AND c.reinstated_at IS NULL"
        " ORDER BY zone, shelf, d.device_id").fetchall()


TELEMETRY_FIELDS = ("uptime_s", "buffered", "reconnects", "temperature_c")


def _telemetry(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Per device: its latest heartbeat's readings (kept by edge.analytics)."""
    out: dict[str, dict[str, Any]] = {}
    for device_id, payload in conn.execute("SELECT device_id, payload FROM device_latest"
                                       " WHERE channel = 'telemetry'"):
        try:
            msg = json.loads(payload)
        except ValueError:
            continue
        values = {k: msg[k] for k in TELEMETRY_FIELDS
                  if isinstance(msg.get(k), int | float) and not isinstance(msg[k], bool)}
        if "uptime_s" in values:
            values["uptime_s"] = fmt_duration(values["uptime_s"])
        if "temperature_c" in values:
            values["temperature_c"] = f"{values['temperature_c']:.1f}"
        out[device_id] = values
    return out


def _page(created: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    conn = read_db()
    rows = _rows(conn)
    prov = _provisioner()
    provisioned = {p.name for p in prov.list()} if prov is not None else set()
    return render_template(
        "devices.html", devices=rows, telemetry=_telemetry(conn), kinds=PANEL_KINDS,
        provisioned=provisioned, can_provision=prov is not None, created=created,
        stale=sum(1 for r in rows if r["status"] == "stale"),
        never=sum(1 for r in rows if r["status"] == "never_seen"),
        bad_clocks=sum(1 for r in rows if r["clock_faults"]),
        cut=sum(1 for r in rows if r["cut_until"])), status


@bp.route("/")
@requires(MANAGER)
def index() -> tuple[str, int]:
    return _page()


def _reload_node() -> None:
    """Wait (briefly) until the writer knows the new device: its first message, sent
    the moment the installer types the password in, must not be an unknown device."""
    node = current_app.extensions.get("vitrine_node")
    if node is not None:
        node.request_reload(wait=5.0)


def _reload_broker(prov: Any) -> bool:
    """SIGHUP the broker; False (and a message) when it runs as a user we may not signal."""
    try:
        return bool(prov.reload_broker())
    except PermissionError:
        flash(_("The broker runs as another user: reload it (systemctl reload mosquitto)."))
        return False


@bp.route("/add", methods=("POST",))
@requires(MANAGER)
def add() -> tuple[str, int] | Response:
    prov = _provisioner()
    if prov is None:
        flash(_("Device provisioning is not configured on this edge (panel_broker_dir)."))
        return redirect(url_for("devices.index"))
    device_id = request.form.get("device_id", "").strip()
    kind = request.form.get("kind", "")
    zone = request.form.get("zone", "").strip()[:64] or None
    shelf = request.form.get("shelf", "").strip()[:64] or None
    if kind not in PANEL_KINDS:
        flash(_("The panel only adds shop-floor devices, never an edge or observer principal."))
        return _page(status=400)
    from vitrine.provisioning import ProvisioningError

    if not valid_id(device_id):
        flash(f"{_('Device id')}: {device_id!r}")
        return _page(status=400)
    try:
        password = prov.add(device_id, kind)
    except ProvisioningError as exc:
        flash(str(exc))
        return _page(status=409)
    write_db().execute(
        "INSERT INTO devices (device_id, kind, zone, shelf) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(device_id) DO UPDATE SET kind = excluded.kind, zone = excluded.zone,"
        " shelf = excluded.shelf", (device_id, kind, zone, shelf))
    log.info("panel: %s added device %s (%s)", g.user.username, device_id, kind)
    _reload_node()
    reloaded = _reload_broker(prov)
    flash(_("Broker reloaded.") if reloaded else
          _("The broker is not running: files updated only."))
    return _page(created={"device_id": device_id, "password": password}, status=201)


@bp.route("/<device_id>/revoke", methods=("POST",))
@requires(MANAGER)
def revoke(device_id: str) -> Response | tuple[str, int]:
    prov = _provisioner()
    if prov is None:
        flash(_("Device provisioning is not configured on this edge (panel_broker_dir)."))
        return redirect(url_for("devices.index"))
    from vitrine.provisioning import ProvisioningError

    principals = {p.name: p.role for p in prov.list()}
    if principals.get(device_id) not in PANEL_KINDS:
        flash(_("The panel only adds shop-floor devices, never an edge or observer principal.")
              if device_id in principals else f"{device_id!r}: " + _("not provisioned"))
        return _page(status=400 if device_id in principals else 404)
    try:
        prov.revoke(device_id)
    except ProvisioningError as exc:
        flash(str(exc))
        return _page(status=404)
    log.info("panel: %s revoked device %s", g.user.username, device_id)
    _reload_broker(prov)
    flash(_("Device %(id)s revoked.", id=device_id))
    return redirect(url_for("devices.index"))
