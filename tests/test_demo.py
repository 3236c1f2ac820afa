"""`vitrine demo` runs a whole simulated store and shows what happens."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.demo_run import run_demo_until

#: What the run must have shown before it is stopped (asserted again, with more, after).
#: A line the test asserts on belongs here too, or the demo may be stopped before printing it.
MARKERS = [r"mosquitto on 127\.0\.0\.1:", r"PANEL\s+https://", r"NFC\s+tag \w+ tapped",
           r"CENTRAL\s+central on", r"PROFILE\s+C\d{7}: ",
           r"SCREEN\s+sign-\S+ shows spotlight \d{14} \(tap\)",
           r"KIOSK\s+shopper: wait greeting .*1200 points", r"KIOSK\s+shopper: wait pickup",
           r"CENTRAL order \w+ received for store", r"EDGE\s+identified",
           r"KIOSK\s+card \w+ read by the kiosk's NFC reader",
           r"CENTRAL order \w+ paid  \[store:\S+, kiosk",
           r"EDGE\s+order \w+ paid -> preparing  \[from central, admin",
           r"EDGE\s+order web-\S+ arrived \(web, \w+\)"]


def labels_current(db_path: Path) -> tuple[int, int]:
    """(labels, labels whose acked bitmap is the wanted one), read-only while the demo runs."""
    if not db_path.exists():
        return (0, 0)
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            labels, current = db.execute("SELECT count(*), sum(acked_hash = want_hash) "
                                         "FROM shelf_labels").fetchone()
        finally:
            db.close()
    except sqlite3.OperationalError:
        return (0, 0)
    return labels, current or 0


def test_demo_runs_a_store_end_to_end(tmp_path):
    var = tmp_path / "demo"

    def settled(text: str) -> bool:
        # more than 10 interest events (the DONE line's count is asserted after the stop)
        if len(re.findall(r"EDGE\s+interest", text)) <= 10:
            return False
        frames = {p.name for p in (var / "frames").glob("*.jpg")}
        return (labels_current(var / "edge.db") == (200, 200)
                and frames == {"sign-entrance-01.jpg", "sign-kitchen-01.jpg"})

    out = run_demo_until(["-m", "vitrine", "demo", "--speed", "40", "--var", str(var)],
                         MARKERS, ready=settled, deadline_s=220)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.seen_all, out.stdout[-3000:]
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
