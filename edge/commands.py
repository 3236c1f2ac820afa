"""What the edge tells kiosks and signage screens after each committed batch.

* A product tapped or scanned in a zone is shown on that zone's signage
  screens (``show_product``): product and price only, never who tapped it, since
  a screen is public (privacy by design: ``command.json`` forbids customer
  fields on this command).
* A customer identified *at a kiosk* is announced to that kiosk only
  (``customer_identified``), so it can greet them and show their offers.

Only the decision of who gets what lives here: the commands themselves are the
typed, schema-checked dataclasses of ``contract.commands``.

Commands are derived from committed events and not stored: a screen that
misses one (edge crash between commit and publish) simply shows the next.
Per batch, a screen gets only the latest product of its zone: a busy zone
does not flood its screen.
"""

from __future__ import annotations

from typing import Any

from contract.commands import CustomerIdentified, ShowProduct

from .catalogue import Catalogue
from .pipeline import uuid5_str

Command = tuple[str, str, dict[str, Any]]  # (family, device_id, payload)


def commands_for(events: list[tuple[str, dict[str, Any], str]],
                 catalogue: Catalogue) -> list[Command]:
    screens_by_zone: dict[str, list[str]] = {}
    for d in catalogue.devices.values():
        if d.kind == "signage" and d.zone:
            screens_by_zone.setdefault(d.zone, []).append(d.device_id)
    latest: dict[str, dict[str, Any]] = {}
    out: list[Command] = []
    for kind, ev, _text in events:
        if kind == "interest" and ev.get("gtin") and ev.get("zone") in screens_by_zone:
            product = ev.get("product") or {}
            for screen in screens_by_zone[ev["zone"]]:
                latest[screen] = ShowProduct(
                    cmd_id=uuid5_str(f"{ev['event_id']}/{screen}"), ts=ev["received_at"],
                    zone=ev["zone"], gtin=ev["gtin"], name=product.get("name"),
                    brand=product.get("brand"), price_cents=product.get("price_cents"),
                    currency=product.get("currency")).to_payload()
        elif kind == "presence":
            device = catalogue.device(ev["device_id"])
            if device is not None and device.kind == "kiosk":
                out.append(("kiosk", device.device_id, CustomerIdentified(
                    cmd_id=uuid5_str(f"{ev['event_id']}/{device.device_id}"),
                    ts=ev["received_at"], zone=ev.get("zone"),
                    customer_id=ev["customer_id"], session_id=ev["session_id"],
                    method=ev["method"]).to_payload()))
    out += [("signage", screen, cmd) for screen, cmd in latest.items()]
    return out
