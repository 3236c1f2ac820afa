"""``vitrine demo``: a whole simulated store on one machine, on embedded defaults.

Starts, in order: the store broker (Mosquitto with the production config
rendered on a free port, or the embedded broker when Mosquitto is missing),
central (SQLite in ``var/demo/central.db``, on a free port), the edge node
(SQLite in ``var/demo/``) forwarding to central, one NFC reader station driven
through nfcpy's real stack (``udp:`` frontend, tags played by the tag
emulator), and a fleet of simulated readers, scanners and a camera with
shoppers walking the store and faults injected, and one touch kiosk driven by a
simulated shopper (``vitrine/demo_kiosk.py``; on Xvfb when there is no display).
Everything the edge decides is
printed live, and so is every member's central profile when it changes: the
omnichannel loop, from a tap on a shelf to the profile a salesperson reads.
Half the members have given tracking consent; the others have a profile too
(identity, points, consents) but nothing about their visits. Credentials, the
loyalty key and the store CA that signs the panel's HTTPS certificate are
generated for this run: none are stored in the repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import secrets
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edge.config import load_config
from edge.node import EdgeNode
from edge.panel.server import lan_address
from edge.panel.users import create_user as add_panel_user
from firmware_sim.faults import parse_faults
from firmware_sim.fleet import Fleet
from firmware_sim.layout import DEMO_LAYOUT, load_layout
from vitrine.broker import BrokerSettings, free_port, start_broker
from vitrine.demo_signage import DemoSignage, label_devices, seed_content
from vitrine.provisioning import Provisioner
from vitrine.tls import ServerCert, TlsError, issue_server_cert, make_ca

NFC_STATION_ID = "nfc-station-01"
BOLD, DIM, RED, GREEN, CYAN, YELLOW, RESET = ("\033[1m", "\033[2m", "\033[31m", "\033[32m",
                                              "\033[36m", "\033[33m", "\033[0m")


class Printer:
    """Readable, one-line-per-fact output; colours only on a terminal."""

    def __init__(self, color: bool):
        self.color = color
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def c(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.color else text

    def line(self, who: str, text: str) -> None:
        with self.lock:
            print(f"{time.monotonic() - self.t0:7.1f}s {who:<6} {text}", flush=True)

    def edge_event(self, kind: str, ev: dict[str, Any]) -> None:
        where = "/".join(filter(None, [ev.get("zone"), ev.get("shelf")])) or "?"
        if kind == "interest":
            p = ev.get("product") or {}
            price = (f"{p['price_cents'] / 100:.2f} {p.get('currency', '')}"
                     if p.get("price_cents") is not None else "no price")
            who = (self.c(GREEN, ev["customer_id"]) if ev.get("customer_id")
                   else f"anonymous {ev['session_id'][:8]}")
            self.line("EDGE", f"interest   {p.get('name', ev.get('gtin'))!s:<28} {price:>10}  "
                      f"{where:<16} {who}  [{ev['device_id']} {ev['source']}]")
        elif kind == "presence":
            self.line("EDGE", self.c(GREEN, f"identified {ev['customer_id']} by {ev['method']} "
                                            f"in {ev.get('zone')}  [{ev['device_id']}]"))
        elif kind == "security":
            self.line("EDGE", self.c(RED, f"SECURITY   token {ev['reason']} at {ev['device_id']}"
                                          f" ({ev.get('zone')}): nobody identified"))
        elif kind == "command.signage":
            price = (f"{ev['price_cents'] / 100:.2f} {ev.get('currency') or ''}"
                     if ev.get("price_cents") is not None else "")
            self.line("SCREEN", self.c(CYAN, f"{ev['device_id']} now shows {ev.get('name')} "
                                             f"{price}"))
        elif kind == "command.kiosk":
            self.line("KIOSK", self.c(CYAN, f"{ev['device_id']} greets {ev['customer_id']}"))
        elif kind == "rejected":
            self.line("EDGE", self.c(YELLOW, f"quarantine {ev['reason']} from "
                                             f"{ev.get('device_id')}: {ev.get('detail', '')[:60]}"))


def _central_call(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _profile_line(profile: dict[str, Any], names: dict[str, str]) -> str:
    """One line a salesperson would read: consent, what they looked at, where last seen."""
    who = profile["customer_id"]
    if not profile.get("tracking"):
        return (f"{who}: member, {profile['loyalty_points']} points; no tracking consent, "
                "so nothing is recorded about their visits")
    products = [names.get(p["gtin"], p["gtin"]) for p in profile["interests"]["products"][:3]]
    seen = profile.get("last_seen") or {}
    where = f", last seen in {seen.get('zone')}" if seen else ""
    n = len(profile["timeline"])
    return (f"{who}: {n} event{'s' if n != 1 else ''}, interested in "
            f"{', '.join(products) or 'nothing yet'}{where}")


def _watch_profiles(url: str, token: str, customers: list[str], names: dict[str, str],
                    printer: Printer, stop: threading.Event) -> None:
    """Print a member's central profile each time it changes (polls the HTTP API)."""
    last: dict[str, str] = {}
    while not stop.wait(2.0):
        for cid in customers:
            try:
                profile = _central_call(f"{url}/api/v1/customers/{cid}", token)
            except urllib.error.HTTPError as exc:
                if exc.code != 404:  # 404: not seen in the store yet
                    printer.line("PROFILE", f"{cid}: central answered {exc.code}")
                continue
            except OSError:
                return  # central stopped
            if profile.get("tracking") and not profile["timeline"]:
                continue  # consented, not in the store yet
            line = _profile_line(profile, names)
            if last.get(cid) != line:
                last[cid] = line
                printer.line("PROFILE", printer.c(BOLD, line))


def _start_central(var: Path, store: str, customers: list[str], printer: Printer
                   ) -> tuple[Any, str, str]:
    """Central on SQLite under ``var``; returns (server, admin token, store token)."""
    from central import create_app
    from central.credentials import issue
    from central.server import ServerThread

    admin = secrets.token_urlsafe(18)
    app = create_app({"sqlite_path": str(var / "central.db"), "admin_token": admin})
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ServerThread(app).start()
    db = app.extensions["central_db"]
    store_token = issue(db, "store", store)
    consenting = customers[::2]
    for c in consenting:  # what the loyalty app sends when the member says yes
        _central_call(f"{server.url}/api/v1/customers/{c}/consents", admin, "PUT",
                      {"tracking": True})
    printer.line("CENTRAL", f"central on {server.url} (SQLite {var / 'central.db'}); "
                            f"{len(consenting)} of {len(customers)} members gave tracking "
                            "consent")
    return server, admin, store_token


def _nfc_station(layout, port: int, password: str, store_id: str, printer: Printer,
                 stop: threading.Event, protocol: str = "5") -> None:
    """Tap product tags on one reader through nfcpy's real stack, every few seconds."""
    from contract.ndef_codec import encode_uri
    from firmware_sim.device import DeviceClient
    from firmware_sim.nfc_station import NfcStation
    from firmware_sim.tag_emulator import TagEmulator, free_udp_port

    path = f"udp:127.0.0.1:{free_udp_port()}"
    client = DeviceClient(NFC_STATION_ID, "nfc_reader", password, store_id=store_id, port=port,
                          protocol=protocol)
    station = NfcStation(path, client, targets=("212F",), poll_iterations=1).start()
    rng = random.Random(7)
    try:
        with TagEmulator(path) as emulator:
            printer.line("NFC", f"reader station {NFC_STATION_ID} on nfcpy {path} "
                                "(same code as a USB reader)")
            while not stop.wait(rng.uniform(3, 6)):
                product = rng.choice(layout.products)
                uid = "02" + secrets.token_hex(7)  # a FeliCa IDm must not start with 01fe
                printer.line("NFC", f"tag {uid} tapped on {NFC_STATION_ID}: {product.name}")
                emulator.present(encode_uri(layout.digital_link(product.gtin)), uid, timeout=5)
    finally:
        station.stop()


def _panel_certificate(tls_dir: Path, host: str, printer: Printer) -> ServerCert | None:
    """The demo's store CA and the panel's certificate, for this run (under var/)."""
    hosts = ["localhost", "127.0.0.1"]
    if host not in ("127.0.0.1", "localhost", "0.0.0.0", "::"):
        hosts.append(host)
    if host in ("0.0.0.0", "::"):
        hosts.append(lan_address())
    try:
        make_ca(tls_dir, days=30)
        return issue_server_cert(tls_dir, "panel", list(dict.fromkeys(hosts)), days=30)
    except TlsError as exc:
        printer.line("PANEL", f"no HTTPS ({exc}): panel on 127.0.0.1 over plain HTTP only")
        return None


def _kiosk_shopper(layout, kiosk_id: str, password: str, key: bytes, port: int,
                   protocol: str, central, db_path: Path, var: Path, printer: Printer,
                   stop: threading.Event, assets_url: str | None = None) -> None:
    """One shopper at the kiosk: greeted with central's points, orders, gets a pickup code."""
    from vitrine.demo_kiosk import (
        KIOSK_CARD_UID,
        card_ndef,
        follow_order,
        run_kiosk,
        seed_customer,
        shopper_steps,
    )
    from vitrine.demo_orders import order_desk

    customer = layout.customers[0]  # one of the members who gave tracking consent
    seed_customer(central, customer.id, 1200)
    product = layout.products[0]
    query = product.name.split()[0][:5].lower()
    printer.line("KIOSK", f"{kiosk_id}: loyalty member {customer.id} (1200 points at central) "
                          f"walks up, taps their card, looks for {query!r}")
    steps = shopper_steps(KIOSK_CARD_UID, card_ndef(key, customer.id, KIOSK_CARD_UID),
                          query, product.name)
    if stop.wait(2.0):
        return
    result = run_kiosk(port=port, store_id=layout.store_id, kiosk_id=kiosk_id,
                       password=password, protocol=protocol, steps=steps,
                       zones=[z.id for z in layout.zones], var=var, say=printer.line,
                       stop=stop, assets_url=assets_url)
    if result is not None and not result.get("ok"):
        printer.line("KIOSK", printer.c(RED, f"simulated shopper stopped: {result.get('error')}"))
    follow_order(db_path, central, layout.store_id, printer.line)
    if not stop.is_set():
        order_desk(central, layout.store_id, _latest_kiosk_order(db_path), product.gtin,
                   product.price_cents, printer.line, stop)


def _latest_kiosk_order(db_path: Path) -> str | None:
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        row = conn.execute("SELECT order_id FROM kiosk_orders WHERE channel = 'kiosk' "
                           "ORDER BY created_at DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vitrine demo", description=__doc__)
    p.add_argument("--layout", default=str(DEMO_LAYOUT))
    p.add_argument("--var", default="var/demo", help="working directory (wiped at start)")
    p.add_argument("--duration", type=float, default=0, help="seconds, 0 = until Ctrl-C")
    p.add_argument("--speed", type=float, default=10.0, help="shopper time compression")
    p.add_argument("--faults", default="default")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-nfc-station", action="store_true")
    p.add_argument("--panel-host", default=os.environ.get("VITRINE_PANEL_HOST", "127.0.0.1"),
                   help="address the panel listens on; 0.0.0.0 lets a tablet on the LAN in")
    p.add_argument("--labels", type=int, default=200, help="simulated e-paper shelf labels")
    p.add_argument("--no-kiosk", action="store_true", help="no touch kiosk")
    args = p.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: "
                                                      "%(message)s")
    logging.getLogger("vitrine.broker").setLevel(logging.INFO)
    logging.getLogger("nfc").setLevel(logging.WARNING)
    printer = Printer(sys.stdout.isatty())
    var = Path(args.var).resolve()
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    layout = load_layout(args.layout)
    store = layout.store_id

    # Credentials and keys for this run only (0600, under var/).
    key = secrets.token_bytes(32)
    passwords = {d.id: secrets.token_urlsafe(18) for d in layout.devices}
    passwords[NFC_STATION_ID] = secrets.token_urlsafe(18)
    passwords["edge"] = secrets.token_urlsafe(18)
    # Screens are in the layout; the shelf labels are generated over its products.
    products = [dataclasses.asdict(p)
                for p in layout.products]
    labels = label_devices([{**p, "zone": p.get("zone") or layout.zones[0].id}
                            for p in products], args.labels)
    passwords.update({d["id"]: secrets.token_urlsafe(18) for d in labels})
    settings = BrokerSettings(data_dir=var / "broker", port=free_port())
    prov = Provisioner(settings.data_dir, store)
    kinds = {d.id: d.kind for d in layout.devices} | {d["id"]: d["kind"] for d in labels} | {
        NFC_STATION_ID: "nfc_reader",
                                                      "edge": "edge"}
    prov.add_many([(n, kinds[n], pw) for n, pw in passwords.items()])
    creds_file = var / "creds.json"
    creds_file.write_text(json.dumps(passwords))
    os.chmod(creds_file, 0o600)

    edge_layout = layout.to_dict()
    edge_layout["devices"].append({"id": NFC_STATION_ID, "kind": "nfc_reader",
                                   "zone": layout.zones[0].id, "shelf": "demo-nfc"})
    edge_layout["devices"] += labels
    layout_file = var / "layout.json"
    layout_file.write_text(json.dumps(edge_layout))

    broker = start_broker(settings, log_file=var / "broker.log")
    customers = [c.id for c in layout.customers]
    central, admin_token, store_token = _start_central(var, store, customers, printer)
    printer.line("BROKER", ("EMBEDDED pure-Python broker (mosquitto not installed)"
                            if broker.embedded else "mosquitto") +
                 f" on 127.0.0.1:{broker.port}, auth + ACL on"
                 + ("" if broker.embedded else f", config {settings.config_file}"))
    panel_tls = _panel_certificate(var / "tls", args.panel_host, printer)
    cfg = load_config(env={}, store_id=store, db_path=var / "edge.db", mqtt_port=broker.port,
                      mqtt_password=passwords["edge"], loyalty_keys="k1:" + key.hex(),
                      layout_path=layout_file, panel_port=free_port(),
                      central_url=central.url, store_token=store_token,
                      assets_port=free_port(),
                      panel_host=args.panel_host if panel_tls else "127.0.0.1",
                      panel_tls_cert=panel_tls.cert if panel_tls else None,
                      panel_tls_key=panel_tls.key if panel_tls else None,
                      panel_broker_dir=settings.data_dir,
                      # no push bridge in the demo: pull the store's order changes often
                      sync_orders_s=2.0)
    node = EdgeNode(cfg)
    if node.sync is not None:
        from vitrine.demo_orders import print_edge_changes

        node.sync.on_orders = print_edge_changes(printer.line)
    seed_content(cfg.db_path, node.assets, products)
    node.listeners.append(printer.edge_event)
    node.start()
    printer.line("EDGE", f"edge node up for {store}: {len(node.catalogue.devices)} devices, "
                         f"{len(node.catalogue.tags)} tags, {len(node.catalogue.products)} "
                         f"products, SQLite {cfg.db_path}")
    if node.panel_url:
        panel_password = secrets.token_urlsafe(12)
        add_panel_user(cfg.db_path, "manager", panel_password, "manager", replace=True)
        printer.line("PANEL", f"{node.panel_url}  user manager / password {panel_password}")
        if panel_tls:
            printer.line("PANEL", f"HTTPS by the store CA {panel_tls.ca}: install it on the "
                                  "tablet once (or accept the warning) to open the panel")

    # The embedded broker (amqtt) speaks MQTT 3.1.1 only; the devices then do too.
    device_protocol = "3.1.1" if broker.embedded else "5"
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads: list[threading.Thread] = []
    if not args.no_nfc_station:
        threads.append(threading.Thread(
            target=_nfc_station, args=(layout, broker.port, passwords[NFC_STATION_ID], store,
                                       printer, stop, device_protocol), daemon=True))
    signage = DemoSignage(
        var=var, store_id=store, port=broker.port, protocol=device_protocol,
        passwords=passwords, labels=labels, assets_url=node.signage.assets_url,
        screens=[(d.id, d.zone) for d in layout.devices if d.kind == "signage"],
        line=printer.line)
    signage.start()
    fleet = Fleet(layout, creds=passwords, loyalty_key=key, port=broker.port,
                  speed=args.speed, seed=args.seed, faults=parse_faults(args.faults),
                  on_story=lambda s: printer.line("SHOP", s.strip()),
                  device_options={"protocol": device_protocol})
    connected = fleet.start()
    printer.line("SIM", f"{connected}/{len(fleet.devices)} simulated devices online; "
                        f"shoppers walk at {args.speed:g}x, faults: {args.faults}")
    printer.line("INFO", f"look: sqlite3 {cfg.db_path} 'select reason, count(*) from quarantine"
                         " group by 1'   |  broker log: " + str(var / "broker.log"))
    printer.line("INFO", "Ctrl-C stops everything")
    fleet_thread = threading.Thread(target=fleet.run, args=(args.duration or 10**9,),
                                    daemon=True)
    threads.append(fleet_thread)
    threads.append(threading.Thread(
        target=_watch_profiles, args=(central.url, admin_token, customers,
                                      {p.gtin: p.name for p in layout.products}, printer, stop),
        daemon=True))
    kiosks = [d for d in layout.devices if d.kind == "kiosk"]
    if kiosks and layout.customers and not args.no_kiosk:
        from vitrine.demo_kiosk import DemoCentral

        demo_central = DemoCentral(central.url, store_token, admin_token,
                                   central.server.app.extensions["central_db"])
        threads.append(threading.Thread(target=_kiosk_shopper, daemon=True, args=(
            layout, kiosks[0].id, passwords[kiosks[0].id], key, broker.port, device_protocol,
            demo_central, cfg.db_path, var, printer, stop, node.signage.assets_url)))
    for t in threads:
        t.start()
    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop.wait(1.0):
            if deadline and time.monotonic() > deadline:
                break
    finally:
        stop.set()
        fleet.stop()
        printer.line("INFO", "stopping: flushing devices, then the edge, then the broker")
        signage.stop()
        fleet.close(flush_timeout=5)
        for t in threads:
            t.join(10)
        time.sleep(0.5)  # let the last acknowledged messages commit
        snap = node.metrics.snapshot()
        node.stop()
        central.stop()
        broker.stop()
    c = snap["counters"]
    printer.line("DONE", f"received {c.get('received', 0)}, accepted {c.get('accepted', 0)}, "
                         f"duplicates dropped {c.get('duplicates', 0)}, quarantined "
                         f"{c.get('quarantined', 0)}, interest {c.get('interest', 0)}, "
                         f"identified {c.get('presence', 0)}, security "
                         f"{sum(v for k, v in c.items() if k.startswith('security.'))}")
    printer.line("DONE", f"everything is in {cfg.db_path} (tables events, outbox, quarantine,"
                         " devices, sessions, security_events)")
    return 0
