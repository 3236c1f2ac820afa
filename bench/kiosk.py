"""bench.kiosk: the touch kiosk against a real broker, edge (50,000 products) and central.

    python -m bench.kiosk [--products 50000] [--sessions 1000]

Measured in one run, each next to a raw baseline from the same run:

* ``cold_start_s``: ``python -m kiosk`` spawned -> first frame drawn, under Xvfb
  (``bare_window_s``: a bare Kivy window the same way);
* ``greeting_p99_ms``: card tapped at the kiosk -> greeting shown (the edge
  verifies the token, opens the session, tells the kiosk; central's points
  fetched; the greeting screen switched in), over every simulated session;
* ``memory_growth_ratio``: the kiosk process's resident memory after
  ``--sessions`` simulated sessions (card, greeting, search, product, "I'm
  done") divided by after the first 10;
* ``search_p99_ms``: one keystroke of search as you type, the kiosk's own
  request (``kiosk_search``) to the edge, over 50,000 products;
* ``order_p99_ms``: ``order_place`` -> the committed reply, while background
  devices publish 1,000 events/s through the same edge (``ping_p99_ms``: the
  kit's no-op request under the same load, the raw baseline).

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from contract.gs1 import gtin_check_digit
from contract.session import DeviceSession
from vitrine.demo_kiosk import card_ndef, seed_customer, start_central
from vitrine.provisioning import Provisioner

from .harness import STORE, machine, run_publishers, start_bench_broker
from .ingest import spawn_edge

KIOSK = "kiosk-bench"
KEY = bytes(range(32))
CUSTOMERS = [(f"C000900{i}", f"a1b2c3{i:02x}") for i in range(5)]
ADJ = ["rouge", "bleu", "vert", "léger", "étanche", "pliable", "compact", "thermo", "doux",
       "solide", "mini", "grand", "rapide", "silencieux", "élégant", "robuste"]
NOUN = ["chaussure", "bouilloire", "veste", "lampe", "casque", "sac", "gourde", "tente",
        "poêle", "montre", "enceinte", "couteau", "chargeur", "café", "thé", "tapis",
        "ballon", "parapluie", "écharpe", "bouteille"]
BRAND = ["Acme", "Brew", "Nordik", "Solaris", "Vélo", "Terra", "Atelier", "Kiwi", "Orbit",
         "Maison"]
ZONES = ["entrance", "shoes", "outdoor", "kitchen", "electronics"]


def _gtin(i: int) -> str:
    body = f"{200_000_000_000 + i:013d}"
    return body + str(gtin_check_digit(body))


def store_layout(products: int) -> dict[str, Any]:
    rng = random.Random(9)
    items = [{"gtin": _gtin(i),
              "name": f"{rng.choice(NOUN).capitalize()} {rng.choice(ADJ)} {i % 97}",
              "brand": rng.choice(BRAND), "category": rng.choice(ZONES),
              "price_cents": rng.randrange(199, 29999), "currency": "EUR"}
             for i in range(products)]
    devices = [{"id": KIOSK, "kind": "kiosk", "zone": "entrance", "shelf": None}]
    devices += [{"id": f"bg-{i}", "kind": "nfc_reader", "zone": "shoes", "shelf": "s1"}
                for i in range(2)]
    return {"store_id": STORE, "zones": [{"id": z, "name": z} for z in ZONES],
            "products": items, "devices": devices,
            "tags": [{"uid": "04a1b2c3d4e5f6", "gtin": items[0]["gtin"], "zone": "shoes",
                      "shelf": "s1"}]}


def p99(samples: list[float]) -> float:
    return round(statistics.quantiles(samples, n=100, method="inclusive")[98], 2)


def kiosk_script(sessions: int, queries: list[str], names: list[str]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for n in range(sessions):
        customer, uid = CUSTOMERS[n % len(CUSTOMERS)]
        steps += [{"card": {"uid": uid, "ndef": card_ndef(KEY, customer, uid)}},
                  {"wait": "greeting", "settled": False, "timeout": 10},
                  {"tap": "search_button"}, {"wait": "search", "settled": False},
                  {"type": queries[n % len(queries)]},
                  {"tap_text": names[n % len(names)]}, {"wait": "product", "settled": False},
                  {"tap": "done_button"}, {"wait": "attract", "settled": False}]
        if n + 1 == min(10, sessions):
            steps.append({"rss": "after_10"})
    steps.append({"rss": "after_all"})
    return steps


def run_window(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[float, Any]:
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return t0, proc


def bare_window_s(env: dict[str, str], workdir: Path) -> float:
    code = ("import time, os; os.environ['KIVY_NO_ARGS']='1'\n"
            "from kivy.app import App\nfrom kivy.uix.label import Label\n"
            "from kivy.clock import Clock\nclass A(App):\n"
            "    def build(self):\n"
            "        Clock.schedule_once(lambda dt: (print('FIRST', time.time(), flush=True),"
            " self.stop()), 0)\n        return Label(text='x')\nA().run()\n")
    path = workdir / "bare_window.py"  # Kivy looks for a .kv beside the app's source file
    path.write_text(code)
    t0, proc = run_window([sys.executable, str(path)], env, 60)
    firsts = [float(line.split()[1]) for line in proc.stdout.splitlines()
              if line.startswith("FIRST")]
    if not firsts:
        raise RuntimeError(f"bare Kivy window failed: {proc.stderr[-2000:]}")
    return firsts[0] - t0


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.kiosk")
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--sessions", type=int, default=int(os.environ.get("BENCH_SESSIONS", 1000)))
    args = ap.parse_args()

    from kiosk.display import start_xvfb

    # Stopped from outside: still stop the edge, central, Xvfb and the broker (finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    background = ["bg-0", "bg-1"]
    broker, workdir = start_bench_broker(background)
    display = start_xvfb()
    central = start_central(workdir, STORE)
    edge = None
    procs: list[Any] = []
    try:
        Provisioner(broker.settings.data_dir, STORE).add(KIOSK, "kiosk", f"{KIOSK}-pw",
                                                         replace=True)
        broker.reload()
        for customer, _uid in CUSTOMERS:
            seed_customer(central, customer, 1500)
        layout = store_layout(args.products)
        (workdir / "layout.json").write_text(json.dumps(layout))
        env = {**os.environ, "VITRINE_STORE_ID": STORE, "VITRINE_DB_PATH": str(
                   workdir / "edge.db"), "VITRINE_MQTT_PORT": str(broker.port),
               "VITRINE_MQTT_PASSWORD": "edge-pw",
               "VITRINE_LAYOUT_PATH": str(workdir / "layout.json"), "VITRINE_PANEL_PORT": "0",
               "VITRINE_LOYALTY_KEYS": "k1:" + KEY.hex(), "VITRINE_CENTRAL_URL": central.url,
               "VITRINE_STORE_TOKEN": central.store_token}
        edge = spawn_edge(env, workdir)
        session = DeviceSession("127.0.0.1", broker.port, STORE, KIOSK, f"{KIOSK}-pw",
                                kind="kiosk", heartbeat_s=3600)
        if not session.start(wait=20):
            raise TimeoutError("kiosk could not connect")
        deadline = time.time() + 120
        while True:  # the edge is up once it answers (seeding 50,000 products takes a while)
            try:
                session.request("ping", {}, timeout=2)
                break
            except TimeoutError:
                if time.time() > deadline or edge.poll() is not None:
                    raise RuntimeError(f"edge not answering: see {workdir / 'edge.log'}") from None
        rng = random.Random(3)
        names = [p["name"] for p in rng.sample(layout["products"], 40)]
        queries = [n.split()[0][:6].lower() for n in names]

        # search as you type: every prefix of every query is one request
        session.request("kiosk_search", {"q": "warm"}, timeout=30)  # the index is built
        search_ms: list[float] = []
        for q in queries:
            for k in range(1, len(q) + 1):
                t = time.perf_counter()
                session.request("kiosk_search", {"q": q[:k], "limit": 12}, timeout=5)
                search_ms.append((time.perf_counter() - t) * 1000)

        # orders and pings under 1,000 events/s of store load
        duration = 60.0
        procs, _ = run_publishers(broker.port, background, int(500 * duration),
                                  rate_per_device=500.0, wait=False)
        time.sleep(2.0)
        order_ms: list[float] = []
        ping_ms: list[float] = []
        gtins = [p["gtin"] for p in layout["products"][:200]]
        for i in range(300):
            t = time.perf_counter()
            session.request("ping", {}, timeout=5)
            ping_ms.append((time.perf_counter() - t) * 1000)
            body = {"client_order_id": f"bench-{uuid.uuid4().hex}", "session_id": None,
                    "lines": [{"gtin": gtins[i % len(gtins)], "quantity": 1}],
                    "fulfilment": {"type": "click_and_collect"}}
            t = time.perf_counter()
            reply = session.request("order_place", body, timeout=5)
            order_ms.append((time.perf_counter() - t) * 1000)
            assert reply["committed"] and reply["status"] == "placed"
            time.sleep(0.02)
        for p in procs:
            p.terminate()
        procs = []
        session.close(2)

        # the window: cold start, greetings, memory over many sessions
        kenv = display.env(env)
        kenv.update(VITRINE_KIOSK_PASSWORD=f"{KIOSK}-pw", KIVY_HOME=str(workdir / "kivy"))
        bare_s = bare_window_s(kenv, workdir)
        script = workdir / "sessions.json"
        t_sessions = time.time()
        # six keystrokes of the first word, then a tap on the first product of that kind
        first_words = [n.split()[0] for n in names]
        script.write_text(json.dumps(kiosk_script(args.sessions, queries, first_words)))
        result = workdir / "result.json"
        t0, proc = run_window(
            [sys.executable, "-m", "kiosk", "--kiosk", KIOSK, "--port", str(broker.port),
             "--store-id", STORE, "--windowed", "--no-transitions", "--script", str(script),
             "--result", str(result), "--exit-after-script"], kenv, 3600)
        out = json.loads(result.read_text())
        if not out.get("ok"):
            raise RuntimeError(f"kiosk run failed: {out.get('error')}\n{proc.stderr[-2000:]}")
        sessions_s = time.time() - t_sessions
        greeting_ms = [d * 1000 for name, d in out["timings"] if name == "wait:greeting"]
        marks = out["marks"]
    finally:
        for p in procs:
            p.terminate()
        if edge is not None:
            edge.send_signal(signal.SIGTERM)
            edge.wait(30)
        central.stop()
        display.stop()
        broker.stop()
    print(json.dumps({
        "products": args.products, "sessions": args.sessions,
        "cold_start_s": round(out["first_frame_wall"] - t0, 3),
        "bare_window_s": round(bare_s, 3),
        "greeting_p99_ms": p99(greeting_ms),
        "greeting_p50_ms": round(statistics.median(greeting_ms), 2),
        "search_p99_ms": p99(search_ms), "search_keystrokes": len(search_ms),
        "order_p99_ms": p99(order_ms), "ping_p99_ms": p99(ping_ms),
        "background_events_per_s": 1000,
        "memory_after_10_kib": marks["after_10"], "memory_after_all_kib": marks["after_all"],
        "memory_growth_ratio": round(marks["after_all"] / marks["after_10"], 3),
        "sessions_wall_s": round(sessions_s, 1),
        "machine": machine()}))


if __name__ == "__main__":
    main()
