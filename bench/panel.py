"""Panel benchmark: page load with a big store database, and tap -> row in a live browser.

``page_p95_ms``: the manager's main pages fetched over HTTPS (cheroot + TLS, the
way a tablet does, one keep-alive connection) from an edge database holding
200 devices, 1,000,000 accepted events and their 1,000,000 derived outbox
rows (analytics rolled up as housekeeping does). The same-run baseline is the
stylesheet over the same connection: server + TLS + session with no database.

``live_p99_ms``: a device publishes a QR scan; the real edge node (real
Mosquitto, writer process) commits it and the panel's event stream puts a row
on the dashboard open in headless Chromium; the browser's clock at the moment
the row is inserted minus the publish time. Baseline in the same run and for
the same taps: the in-store interest event reaching an MQTT subscriber
(``mqtt_p99_ms``), i.e. tap -> in-store event.

    python -m bench.panel            # JSON on the last line
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.harness import GTIN, STORE, client, connect, layout, machine, start_bench_broker
from contract.topics import device_topic, event_topic
from edge import analytics
from edge.config import load_config
from edge.db import connect as db_connect
from edge.db import migrate
from edge.metrics import Metrics
from edge.panel.server import PanelServer
from edge.panel.users import create_user
from vitrine.broker import free_port
from vitrine.tls import ServerCert, issue_server_cert, make_ca

DEVICES = 200
EVENTS = 1_000_000
PAGES = ["/", "/devices/", "/events/", "/analytics/", "/operations/", "/prices/", "/stock/",
         "/quarantine/", "/users/", "/screens/", "/clienteling/"]
ROUNDS = 30
TAPS = 100
TAP_INTERVAL_S = 0.25
PASSWORD = "bench-password-1"
CHROMIUM = "/usr/bin/chromium"


def _pct(samples: list[float], q: int) -> float:
    return round(statistics.quantiles(samples, n=100, method="inclusive")[q - 1], 2)


def fill(db_path: Path) -> None:
    """200 devices, 1M events, 1M outbox rows over 30 days, analytics rolled up."""
    db = db_connect(db_path)
    migrate(db)
    conn = db.conn
    now = time.time()
    zones = ["entrance", "shoes", "outdoor", "kitchen", "electronics", "checkout"]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO devices (device_id, kind, zone, shelf, fw, state, heartbeat_s, last_seen,"
        " stale) VALUES (?, 'nfc_reader', ?, ?, '1.4.2', ?, 30, ?, ?)",
        [(f"nfc-{i:03d}", zones[i % 6], f"{zones[i % 6]}-{i % 8}",
          "offline" if i % 50 == 0 else "online", now - (i % 90), int(i % 40 == 0))
         for i in range(DEVICES)])
    conn.executemany("INSERT INTO products (gtin, name, price_cents, currency) VALUES"
                     " (?, ?, ?, 'EUR')",
                     [(f"{i:014d}", f"Product {i}", 100 + i) for i in range(500)])
    span = 30 * 86400

    def events():
        for i in range(EVENTS):
            dev = f"nfc-{i % DEVICES:03d}"
            at = now - span + span * i / EVENTS
            text = f"https://id.gs1.org/01/{i % 500:014d}"
            yield (dev, f"m{i}", "telemetry" if i % 10 == 0 else "qr", at, at,
                   f'{{"msg_id":"m{i}","ts":{at:f},"text":"{text}"}}')

    conn.executemany("INSERT INTO events (device_id, msg_id, channel, received_at, device_ts,"
                     " payload) VALUES (?, ?, ?, ?, ?, ?)", events())

    def outbox():
        for i in range(EVENTS):
            at = now - span + span * i / EVENTS
            ev = {"event_id": f"e{i}", "type": "interest", "store_id": STORE,
                  "device_id": f"nfc-{i % DEVICES:03d}", "zone": zones[i % 6],
                  "shelf": f"{zones[i % 6]}-{i % 8}", "gtin": f"{i % 500:014d}",
                  "product": {"name": f"Product {i % 500}"}, "received_at": at,
                  "session_id": f"s{i // 5}", "customer_id": None}
            yield (f"e{i}", "interest", f"s{i // 5}", json.dumps(ev), at,
                   at + 1 if i < EVENTS - 5000 else None)

    conn.executemany("INSERT INTO outbox (event_id, kind, customer_key, payload, created_at,"
                     " sent_at) VALUES (?, ?, ?, ?, ?, ?)", outbox())
    conn.executemany("INSERT INTO quarantine (received_at, topic, device_id, reason, detail,"
                     " size, payload) VALUES (?, 't', ?, 'not_json', 'x', 9, x'00')",
                     [(now - i, f"nfc-{i % DEVICES:03d}") for i in range(10_000)])
    conn.execute("COMMIT")
    while True:  # what housekeeping does, 50,000 rows per pass
        conn.execute("BEGIN")
        n = analytics.roll_up(conn) + analytics.record_latest(conn)
        analytics.record_states(conn, now)
        conn.execute("COMMIT")
        if n == 0:
            break
    conn.close()


class Https:
    """One keep-alive HTTPS connection with a cookie jar of one cookie."""

    def __init__(self, port: int, cert: ServerCert):
        self.origin = f"https://127.0.0.1:{port}"
        self.conn = http.client.HTTPSConnection(
            "127.0.0.1", port, context=ssl.create_default_context(cafile=str(cert.ca)))
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
                   "Referer": self.origin + path}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read().decode()
        for cookie in resp.msg.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value
        return resp.status, data

    def login(self, user: str, password: str) -> None:
        from urllib.parse import urlencode

        _, html = self.request("GET", "/auth/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        status, _ = self.request("POST", "/auth/login", urlencode(
            {"csrf_token": token, "username": user, "password": password, "next": "/"}))
        if status != 302:
            raise RuntimeError(f"login failed: {status}")


def _cert(workdir: Path) -> ServerCert:
    tls = workdir / "tls"
    make_ca(tls, days=2, bits=2048)
    return issue_server_cert(tls, "panel", ["127.0.0.1", "localhost"], days=2)


def bench_pages(workdir: Path, cert: ServerCert) -> dict[str, Any]:
    db_path = workdir / "big.db"
    t0 = time.perf_counter()
    fill(db_path)
    fill_s = time.perf_counter() - t0
    create_user(db_path, "boss", PASSWORD, "manager")
    cfg = load_config(env={}, store_id=STORE, db_path=db_path, panel_port=free_port(),
                      panel_tls_cert=cert.cert, panel_tls_key=cert.key)
    node = SimpleNamespace(cfg=cfg, metrics=Metrics(), request_reload=lambda *a: True)
    server = PanelServer(node).start()
    try:
        http_ = Https(cfg.panel_port, cert)
        http_.login("boss", PASSWORD)
        for page in PAGES:  # warm: first query plans, template compilation
            status, _ = http_.request("GET", page)
            assert status == 200, (page, status)  # a redirect to the login would be no page
        by_page: dict[str, list[float]] = {p: [] for p in PAGES}
        static: list[float] = []
        for _ in range(ROUNDS):
            for page in PAGES:
                t = time.perf_counter()
                status, _ = http_.request("GET", page)
                by_page[page].append((time.perf_counter() - t) * 1000)
                assert status == 200, (page, status)
            t = time.perf_counter()
            http_.request("GET", "/static/panel.css")
            static.append((time.perf_counter() - t) * 1000)
    finally:
        server.stop()
    every = [x for xs in by_page.values() for x in xs]
    return {"page_p50_ms": _pct(every, 50), "page_p95_ms": _pct(every, 95),
            "static_p95_ms": _pct(static, 95),
            "page_ratio_p95": round(_pct(every, 95) / _pct(static, 95), 1),
            "per_page_p95_ms": {p: _pct(v, 95) for p, v in by_page.items()},
            "db_mb": round(db_path.stat().st_size / 1e6), "fill_s": round(fill_s, 1)}


def bench_live(workdir: Path, cert: ServerCert) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from edge.node import EdgeNode

    broker, bdir = start_bench_broker(["probe"])
    layout_file = workdir / "layout.json"
    layout_file.write_text(json.dumps(layout(["probe"])))
    cfg = load_config(env={}, store_id=STORE, db_path=workdir / "live.db",
                      mqtt_port=broker.port, mqtt_password="edge-pw", layout_path=layout_file,
                      panel_port=free_port(), panel_tls_cert=cert.cert, panel_tls_key=cert.key)
    node = EdgeNode(cfg)
    create_user(cfg.db_path, "boss", PASSWORD, "manager")
    node.start()
    sent: list[float] = []
    mqtt_at: list[float] = []
    observer = client("observer")
    observer.on_message = lambda c, u, msg: mqtt_at.append(time.time())
    connect(observer, broker.port)
    observer.subscribe(event_topic(STORE, "interest"), qos=1)
    probe = client("probe")
    connect(probe, broker.port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--ignore-certificate-errors"])
            page = browser.new_page(viewport={"width": 820, "height": 1180})
            page.goto(node.panel_url + "/auth/login")
            page.fill("#username", "boss")
            page.fill("#password", PASSWORD)
            page.click("form.login button[type=submit]")
            page.wait_for_selector("#live-dot.on")
            page.evaluate("""() => {
                window.__rows = [];
                new MutationObserver((muts) => { const t = Date.now();
                  muts.forEach((m) => m.addedNodes.forEach(() => window.__rows.push(t))); })
                  .observe(document.querySelector('#live-events tbody'), {childList: true});
            }""")
            topic = device_topic(STORE, "probe", "qr")
            for i in range(TAPS):
                body = json.dumps({"msg_id": f"live-{i}-{time.time_ns()}", "ts": time.time(),
                                   "text": f"https://id.gs1.org/01/{GTIN}"})
                sent.append(time.time())
                probe.publish(topic, body, qos=1)
                time.sleep(TAP_INTERVAL_S)
            deadline = time.time() + 10
            while page.evaluate("window.__rows.length") < TAPS and time.time() < deadline:
                time.sleep(0.1)
            rows = page.evaluate("window.__rows")
            browser.close()
    finally:
        for c in (probe, observer):
            c.disconnect()
            c.loop_stop()
        node.stop()
        broker.stop()
        shutil.rmtree(bdir, ignore_errors=True)
    if len(rows) < TAPS or len(mqtt_at) < TAPS:
        raise RuntimeError(f"only {len(rows)} rows / {len(mqtt_at)} events for {TAPS} taps")
    live = [(r * 1e-3 - s) * 1000 for r, s in zip(rows, sent, strict=False)]
    mqtt = [(m - s) * 1000 for m, s in zip(mqtt_at, sent, strict=False)]
    return {"live_p50_ms": _pct(live, 50), "live_p99_ms": _pct(live, 99),
            "mqtt_p50_ms": _pct(mqtt, 50), "mqtt_p99_ms": _pct(mqtt, 99),
            "live_ratio_p99": round(_pct(live, 99) / _pct(mqtt, 99), 1), "taps": TAPS}


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="vitrine-bench-panel-"))
    try:
        cert = _cert(workdir)
        pages = bench_pages(workdir, cert)
        print(json.dumps({"pages": pages}), file=sys.stderr)
        live = bench_live(workdir, cert)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({**pages, **live, "devices": DEVICES, "events": EVENTS,
                      "machine": machine()}))


if __name__ == "__main__":
    main()
