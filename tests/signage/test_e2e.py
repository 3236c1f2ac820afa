"""End to end on a real Mosquitto: tap -> spotlight, price change -> labels acked, offline play."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import ndef
import pytest

from contract.session import DeviceSession
from edge.config import load_config
from edge.node import EdgeNode
from edge.rules import Rules
from edge.signage_service import store_playlists
from edge.sync import materialise
from firmware_sim.shelf_label import SimLabel
from signage.cache import ScreenCache
from signage.player import Player
from signage.profiles import LANDSCAPE
from signage.sinks import DiskSink
from tests.edge.conftest import GTIN, GTIN_2, LAYOUT, LOYALTY_KEY, query, wait_until

pytestmark = pytest.mark.integration
SCREEN = "sign-01"
LABELS = [f"esl-{n:03d}" for n in range(12)]


def _layout() -> dict:
    layout = json.loads(json.dumps(LAYOUT))
    layout["devices"] += [{"id": d, "kind": "shelf_label", "zone": "shoes", "shelf": None,
                           "gtin": GTIN if n % 2 == 0 else GTIN_2,
                           "size": "4.2" if n % 4 == 0 else "2.9"}
                          for n, d in enumerate(LABELS)]
    return layout


@pytest.fixture
def store(broker, tmp_path):
    layout = _layout()
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    broker.add_many([(d["id"], d["kind"]) for d in layout["devices"]])
    cfg = load_config(env={}, store_id=broker.store_id, db_path=tmp_path / "edge.db",
                      mqtt_port=broker.port, mqtt_password="edge-pw",
                      loyalty_keys="k1:" + LOYALTY_KEY.hex(),
                      layout_path=tmp_path / "layout.json", stale_check_s=0.2, panel_port=0,
                      spotlight_min_show_s=0.0)
    return cfg


class Screen:
    """A player joined to the store through its device session, ticking in a thread."""

    def __init__(self, broker, tmp_path: Path, zone: str = "shoes"):
        self.session = DeviceSession("127.0.0.1", broker.port, broker.store_id, SCREEN,
                                     f"{SCREEN}-pw", kind="signage", reconnect_max_s=1.0)
        self.sink = DiskSink(tmp_path / "frames", SCREEN)
        self.player = Player(SCREEN, zone, LANDSCAPE, ScreenCache(tmp_path / "screen"),
                             self.sink, report=lambda r: self.session.publish_json("play", r),
                             hold_s=30.0)
        self.session.on_command(self.player.on_command)
        self.stop = threading.Event()
        self.shown: list[tuple[str, str, float]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.005):
            item = self.player.tick()
            if not self.shown or self.shown[-1][0] != item.id:
                self.shown.append((item.id, item.kind, time.monotonic()))

    def start(self) -> Screen:
        self.session.start(wait=5)
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.player.close()
        self.session.close(flush_timeout=2)


def _tap(broker, gtin: str) -> None:
    session = DeviceSession("127.0.0.1", broker.port, broker.store_id, "nfc-01", "nfc-01-pw",
                            kind="nfc_reader")
    session.start(wait=5)
    record = ndef.UriRecord(f"https://id.gs1.org/01/{gtin}")
    session.publish_json("nfc", {"uid": "04aabbccddeeff",
                                 "ndef": base64.b64encode(b"".join(ndef.message_encoder(
                                     [record]))).decode()})
    assert session.flush(5)
    session.close()


def test_tap_puts_the_product_on_the_zones_screen(broker, store, tmp_path):
    with EdgeNode(store) as _edge:
        screen = Screen(broker, tmp_path).start()
        try:
            _tap(broker, GTIN)
            meta = wait_until(lambda: screen.sink.last if screen.sink.last
                              and screen.sink.last["kind"] == "spotlight" else None, 30)
            assert meta["gtin"] == GTIN and meta["trigger"] == "tap"
            frame = (tmp_path / "frames" / f"{SCREEN}.jpg").read_bytes()
            assert frame[:2] == b"\xff\xd8"
        finally:
            screen.close()
        # proof of play of the spotlight reached the edge and waits for central
        rows = wait_until(lambda: query(store.db_path, "SELECT payload FROM outbox WHERE "
                                                      "kind = 'play'"), 30)
        plays = [json.loads(r[0]) for r in rows]
        assert any(p["trigger"] == "tap" and p["gtin"] == GTIN for p in plays)
        assert all("customer_id" not in p for p in plays)


def _label_state(db_path) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in query(db_path, "SELECT device_id, gtin, want_hash, acked_hash, "
                                                "acked_price_cents FROM shelf_labels")}


def test_price_change_reaches_every_affected_label(broker, store, tmp_path):
    with EdgeNode(store) as _edge:
        sessions, labels = [], {}
        for d in LABELS:
            s = DeviceSession("127.0.0.1", broker.port, broker.store_id, d, f"{d}-pw",
                              kind="shelf_label")
            labels[d] = SimLabel(d, s.publish_json)
            s.on_command(labels[d].on_command)
            s.start(wait=5)
            sessions.append(s)
        try:
            state = wait_until(lambda: (lambda st: st if all(
                v[1] and v[1] == v[2] for v in st.values()) else None)(
                _label_state(store.db_path)), 60)
            before = {d: v[1] for d, v in state.items()}
            assert {d: lab.shown_hash for d, lab in labels.items()} == before
            from edge.db import connect
            db = connect(store.db_path)
            now = time.time()
            db.conn.execute("BEGIN IMMEDIATE")
            db.conn.execute("INSERT INTO local_markdowns (gtin, price_cents, valid_from, set_at)"
                            " VALUES (?, 4999, 0, ?)", (GTIN, now))
            materialise(db.conn, store.store_id, Rules(), [GTIN], now)
            db.conn.execute("COMMIT")
            db.conn.close()
            affected = [d for d, v in state.items() if v[0] == GTIN]
            after = wait_until(lambda: (lambda st: st if all(
                st[d][2] == st[d][1] and st[d][1] != before[d] and st[d][3] == 4999
                for d in affected) else None)(_label_state(store.db_path)), 60)
            for d in LABELS:
                if d not in affected:
                    assert after[d][1] == before[d]  # other products' labels untouched
            assert all(labels[d].price_cents == 4999 for d in affected)
        finally:
            for s in sessions:
                s.close(flush_timeout=1)


PLAYLIST = {"format": "vitrine-playlist/1", "playlists": [
    {"id": "loop", "zones": ["*"], "items": [
        {"kind": "text", "id": "a", "title": "Premier", "duration_s": 0.4},
        {"kind": "text", "id": "b", "title": "Deuxième", "duration_s": 0.4}]}]}


CHANGED = {"format": "vitrine-playlist/1", "playlists": [
    {"id": "loop", "zones": ["*"], "items": [
        {"kind": "text", "id": "a", "title": "Premier", "duration_s": 0.4},
        {"kind": "text", "id": "c", "title": "Nouveau", "duration_s": 0.4}]}]}


def test_player_keeps_playing_with_broker_and_edge_down_and_resumes(broker, store, tmp_path):
    edge = EdgeNode(store).start()
    from edge.db import connect
    db = connect(store.db_path)
    store_playlists(db.conn, json.dumps(PLAYLIST))
    db.conn.close()
    screen = Screen(broker, tmp_path).start()
    try:
        wait_until(lambda: screen.player.playlists is not None, 30)
        wait_until(lambda: {i for i, _k, _t in screen.shown} >= {"a", "b"}, 30)
        version_before = screen.player.playlists.version
        edge.stop()
        broker.process.stop()
        wait_until(lambda: not screen.session.connected, 30)
        t_off, wall_off = time.monotonic(), time.time()
        time.sleep(2.5)
        offline = [i for i, _k, t in screen.shown if t > t_off]
        assert offline.count("a") >= 2 and offline.count("b") >= 2  # schedule kept running
        # while the store is down, the manager replaces the playlist: "b" is deleted
        db = connect(store.db_path)
        store_playlists(db.conn, json.dumps(CHANGED))
        db.conn.close()
        broker.restart()
        edge = EdgeNode(store).start()
        wait_until(lambda: screen.session.connected, 30)
        # it catches up: the new version replaces the cached one, "b" never comes back
        wait_until(lambda: screen.player.playlists.version != version_before, 30)
        t_new = time.monotonic()
        time.sleep(1.5)
        after = {i for i, _k, t in screen.shown if t > t_new}
        assert after and "b" not in after and after <= {"a", "c"}
        cached = json.loads((tmp_path / "screen" / "playlist.json").read_text())
        assert {i["id"] for p in cached["playlists"] for i in p["items"]} == {"a", "c"}
        # proof of play recorded while offline reaches the edge after the restart
        def offline_plays() -> int:
            rows = query(store.db_path, "SELECT payload FROM events WHERE channel = 'play'")
            return sum(1 for (p,) in rows if json.loads(p)["started_at"] >= wall_off)

        assert wait_until(lambda: offline_plays() >= 4, 20)
    finally:
        screen.close()
        edge.stop()


def test_vitrine_signage_play_runs_a_headless_screen(broker, store, tmp_path):
    import subprocess
    import sys

    (tmp_path / "pw").write_text(f"{SCREEN}-pw\n")
    frames = tmp_path / "cli-frames"
    with EdgeNode(store) as _edge:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vitrine", "signage", "play", "--screen", SCREEN,
             "--zone", "shoes", "--port", str(broker.port), "--store-id", broker.store_id,
             "--password-file", str(tmp_path / "pw"), "--cache-dir", str(tmp_path / "cli"),
             "--frames-dir", str(frames), "--window", "off"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_until(lambda: query(store.db_path, "SELECT state FROM devices WHERE "
                                                   "device_id = ?", SCREEN)[0][0] == "online",
                       30)
            _tap(broker, GTIN)

            def spotlight():
                try:
                    meta = json.loads((frames / f"{SCREEN}.json").read_text())
                except (OSError, ValueError):
                    return None
                return meta if meta["kind"] == "spotlight" else None

            meta = wait_until(spotlight, 30)
            assert meta["gtin"] == GTIN and meta["trigger"] == "tap"
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out[-2000:]
        assert "Traceback" not in out
