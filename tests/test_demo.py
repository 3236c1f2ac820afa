"""`vitrine demo` runs a whole simulated store and shows what happens."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys


def test_demo_runs_a_store_end_to_end(tmp_path):
    var = tmp_path / "demo"
    out = subprocess.run(
        [sys.executable, "-m", "vitrine", "demo", "--duration", "40", "--speed", "40",
         "--var", str(var)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "mosquitto on 127.0.0.1:" in text
    # The panel is served over HTTPS by the demo's own store CA, and says where.
    assert re.search(r"PANEL\s+https://127\.0\.0\.1:\d+\s+user manager / password \S+", text)
    assert (var / "tls" / "ca.crt").exists() and (var / "tls" / "panel.crt").exists()
    assert re.search(r"EDGE\s+interest", text)
    assert re.search(r"NFC\s+tag \w+ tapped", text)
    done = re.search(r"received (\d+), accepted (\d+).*interest (\d+), identified (\d+)", text)
    assert done, text[-2000:]
    received, accepted, interest, identified = map(int, done.groups())
    assert accepted > 20 and interest > 10 and identified >= 1
    db = sqlite3.connect(var / "edge.db")
    (n_outbox,) = db.execute("SELECT count(*) FROM outbox").fetchone()
    assert n_outbox >= interest + identified
    # Central runs too, the edge forwards to it, and members' profiles are printed.
    assert re.search(r"CENTRAL\s+central on http://127\.0\.0\.1:\d+", text)
    assert re.search(r"PROFILE\s+C\d{7}: ", text), text[-3000:]
    (sent,) = db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL").fetchone()
    assert sent > 0
    central = sqlite3.connect(var / "central.db")
    (stored,) = central.execute("SELECT count(*) FROM events").fetchone()
    assert stored > 0
    assert "Traceback" not in out.stderr
    # screens played (frames on disk, a spotlight after a tap) and every label acked its bitmap
    assert re.search(r"SCREEN\s+sign-\S+ shows spotlight \d{14} \(tap\)", text)
    frames = sorted(p.name for p in (var / "frames").glob("*.jpg"))
    assert frames == ["sign-entrance-01.jpg", "sign-kitchen-01.jpg"]
    (labels, current) = db.execute("SELECT count(*), sum(acked_hash = want_hash) FROM "
                                   "shelf_labels").fetchone()
    assert labels == 200 and current == 200
    # the kiosk's simulated shopper: greeted with central's points, orders, order at central
    assert re.search(r"KIOSK\s+card \w+ read by the kiosk's NFC reader", text), text[-3000:]
    assert re.search(r"KIOSK\s+shopper: wait greeting .*1200 points", text), text[-3000:]
    assert re.search(r"KIOSK\s+shopper: wait pickup", text)
    assert re.search(r"CENTRAL order \w+ received for store", text)
    # ...and comes back: paid at the kiosk, central's order desk moves it on, the edge
    # applies it; a web order for pickup here arrives in the store's pickup queue.
    assert re.search(r"CENTRAL order \w+ paid  \[store:\S+, kiosk", text), text[-3000:]
    assert re.search(r"EDGE\s+order \w+ paid -> preparing  \[from central, admin", text)
    assert re.search(r"EDGE\s+order web-\S+ arrived \(web, \w+\)", text), text[-3000:]
