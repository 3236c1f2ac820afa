"""Attribution against ground truth: is every event in a profile that person's own?

A busy simulated store (the demo layout, >= 50 shoppers in the store at once, a
third of them loyalty members, the demo's 10x speed-up) runs through the real
broker, the real edge (writer process) and a real central (SQLite) that the edge
forwards to. The fleet reports every read it made and which shopper made it;
afterwards each member's events are read back from central (``GET
/api/v1/customers/<id>/export``) and compared with that truth:

- ``precision``: of the presence and interest events central credits to
  customers, the share that the customer really made (goal 1.0);
- ``recall``: of the products members picked up, the share central credits to
  them (reads that carry no identity stay anonymous by design, so < 1);
- ``baseline_precision``/``baseline_recall``: the rule the edge used before
  (sessions per reader with a 90 s gap, every read in a session credited to
  whoever identified in it), replayed over the same reads with the edge's own
  receive times: the error the new rule removes, measured in the same run.

Prints one JSON object on its last line. ``python -m bench.attribution --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sqlite3
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.harness import machine
from central import create_app
from central.credentials import issue
from central.server import ServerThread
from edge.config import load_config
from edge.node import EdgeNode
from edge.pipeline import uuid5_str
from firmware_sim.faults import parse_faults
from firmware_sim.fleet import Fleet, Read
from firmware_sim.layout import DEMO_LAYOUT, load_layout
from vitrine.broker import BrokerSettings, free_port, start_broker
from vitrine.provisioning import Provisioner

#: The old rule, replayed for the baseline: a reader's session ends after this silence.
OLD_GAP_S = 90.0


def _api(method: str, url: str, token: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def old_rule(reads: list[Read], received: dict[tuple[str, str], float]
             ) -> dict[tuple[str, str], str]:
    """(device, msg_id) -> customer, as per-reader 90 s sessions credited them."""
    by_device: dict[str, list[tuple[float, Read]]] = defaultdict(list)
    for r in reads:
        at = received.get((r.device_id, r.msg_id))
        if at is not None:
            by_device[r.device_id].append((at, r))
    credited: dict[tuple[str, str], str] = {}
    for items in by_device.values():
        items.sort(key=lambda x: x[0])
        sessions: list[list[tuple[float, Read]]] = []
        last = -1e18
        for at, r in items:
            if at - last > OLD_GAP_S or not sessions:
                sessions.append([])
            sessions[-1].append((at, r))
            last = at
        for session in sessions:
            # Who identified in it (the first customer; the old code split on a second one).
            owner = None
            for _, r in session:
                identifies = r.action == "identify" or r.with_app
                if identifies and r.customer_id and owner is None:
                    owner = r.customer_id
                elif identifies and r.customer_id and r.customer_id != owner:
                    break
            if owner is None:
                continue
            for _, r in session:
                if r.gtin is not None:
                    credited[(r.device_id, r.msg_id)] = owner
    return credited


def score(credited: dict[tuple[str, str], str], reads: list[Read]) -> tuple[float, float]:
    truth = {(r.device_id, r.msg_id): r for r in reads}
    product = [r for r in reads if r.gtin is not None]
    right = sum(1 for key, c in credited.items() if key in truth and truth[key].customer_id == c)
    member_products = [r for r in product if r.customer_id]
    found = sum(1 for r in member_products
                if credited.get((r.device_id, r.msg_id)) == r.customer_id)
    return (right / len(credited) if credited else 1.0,
            found / len(member_products) if member_products else 0.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.attribution", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=150.0, help="real seconds of shopping")
    p.add_argument("--speed", type=float, default=10.0, help="the demo's time compression")
    p.add_argument("--arrival-s", type=float, default=7.0,
                   help="simulated seconds between arrivals (7 s keeps ~70 in the store)")
    p.add_argument("--members", type=float, default=1 / 3, help="share of loyalty members")
    p.add_argument("--faults", default="none", help="firmware_sim fault preset")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--layout", default=str(DEMO_LAYOUT))
    p.add_argument("--no-kiosks", action="store_true",
                   help="do not play the kiosks (shelf devices only)")
    args = p.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    tmp = Path(tempfile.mkdtemp(prefix="vitrine-attribution-"))
    layout = load_layout(args.layout)
    store = layout.store_id
    key = secrets.token_bytes(32)
    passwords = {d.id: secrets.token_urlsafe(12) for d in layout.devices}
    passwords["edge"] = secrets.token_urlsafe(12)
    settings = BrokerSettings(data_dir=tmp / "broker", port=free_port(), persistence=False)
    Provisioner(settings.data_dir, store).add_many(
        [(n, {d.id: d.kind for d in layout.devices}.get(n, "edge"), pw)
         for n, pw in passwords.items()])
    layout_file = tmp / "layout.json"
    layout_file.write_text(json.dumps(layout.to_dict()))
    broker = start_broker(settings, log_file=tmp / "broker.log", allow_embedded=False)

    admin = secrets.token_urlsafe(16)
    app = create_app({"sqlite_path": str(tmp / "central.db"), "admin_token": admin})
    server = ServerThread(app).start()
    store_token = issue(app.extensions["central_db"], "store", store)
    for c in layout.customers:  # members who said yes to tracking: what may be recorded
        _api("PUT", f"{server.url}/api/v1/customers/{c.id}/consents", admin, {"tracking": True})

    cfg = load_config(env={}, store_id=store, db_path=tmp / "edge.db", mqtt_port=broker.port,
                      mqtt_password=passwords["edge"], loyalty_keys="k1:" + key.hex(),
                      layout_path=layout_file, panel_port=0, central_url=server.url,
                      store_token=store_token)
    node = EdgeNode(cfg).start()
    reads: list[Read] = []
    fleet = Fleet(layout, creds=passwords, loyalty_key=key, port=broker.port, speed=args.speed,
                  seed=args.seed, faults=parse_faults(args.faults), on_read=reads.append,
                  identified_share=args.members, arrival_s=args.arrival_s,
                  kiosks=not args.no_kiosks, on_story=lambda line: None)
    try:
        fleet.start()
        stats = fleet.run(args.duration)
        fleet.close(flush_timeout=10)
        edge_db = sqlite3.connect(cfg.db_path)
        keys = {(r.device_id, r.msg_id) for r in reads}

        def committed() -> int:
            return edge_db.execute("SELECT count(*) FROM events").fetchone()[0]

        _wait(lambda: committed() >= len(keys), 60, "the edge to commit every read")
        _wait(lambda: edge_db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
              .fetchone()[0] == 0, 120, "the edge to forward everything to central")
        received = {(d, m): at for d, m, at in edge_db.execute(
            "SELECT device_id, msg_id, received_at FROM events")}
        edge_db.close()

        # event_id -> the read it came from (edge/pipeline.py: uuid5 of store/device/msg/n).
        origin = {uuid5_str(f"{store}/{r.device_id}/{r.msg_id}/{n}"): (r.device_id, r.msg_id)
                  for r in reads for n in range(1, 5)}
        truth_of = {(r.device_id, r.msg_id): r for r in reads}
        credited: dict[tuple[str, str], str] = {}
        events = wrong = 0
        for c in layout.customers:
            export = _api("GET", f"{server.url}/api/v1/customers/{c.id}/export", admin)
            for ev in export["events"]:
                if ev["kind"] not in ("interest", "presence"):
                    continue
                events += 1
                read = origin.get(ev["event_id"])
                truth = truth_of.get(read) if read else None
                if truth is None or truth.customer_id != c.id:
                    wrong += 1
                elif ev["kind"] == "interest":
                    credited[read] = c.id  # type: ignore[index]
        member_products = [r for r in reads if r.gtin and r.customer_id]
        found = sum(1 for r in member_products
                    if credited.get((r.device_id, r.msg_id)) == r.customer_id)
        base_precision, base_recall = score(old_rule(reads, received), reads)
    finally:
        fleet.close(flush_timeout=0)
        node.stop()
        server.stop()
        broker.stop()

    precision = (events - wrong) / events if events else 1.0
    result = {
        "precision": round(precision, 4),
        "recall": round(found / len(member_products), 4) if member_products else 0.0,
        "shoppers": stats["shoppers"],
        "events": events,
        "wrong_events": wrong,
        "shoppers_concurrent_max": stats["in_store_max"],
        "kiosk_sessions": stats["kiosk_sessions"],
        "kiosk_ends": {k: stats[f"kiosk_{k}"] for k in ("done", "timeout", "end_failed",
                                                         "busy")},
        "members": sum(1 for r in {(r.shopper_id, r.customer_id) for r in reads} if r[1]),
        "reads": len(reads),
        "member_product_reads": len(member_products),
        "baseline_precision": round(base_precision, 4),
        "baseline_recall": round(base_recall, 4),
        "speed": args.speed,
        "duration_s": args.duration,
        "faults": args.faults,
        "machine": machine(),
    }
    print(json.dumps(result))
    return 0 if wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
