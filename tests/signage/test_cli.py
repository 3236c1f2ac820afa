"""``vitrine signage``: playlist check/load/show and render, as a store manager runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from edge import db as edge_db

EXAMPLE = Path(__file__).parents[2] / "signage" / "examples" / "demo_playlists.json"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vitrine", "signage", *args],
                          capture_output=True, text=True, timeout=60)


def test_check_and_show_the_example(tmp_path):
    ok = _run("playlist", "check", str(EXAMPLE))
    assert ok.returncode == 0 and "2 playlist(s)" in ok.stdout
    shown = _run("playlist", "show", str(EXAMPLE), "--screen", "sign-shoes-01", "--zone",
                 "shoes", "--at", "2026-06-01T09:00:00+02:00")
    assert json.loads(shown.stdout)["playlist"] == "shoes-morning"
    sunday = _run("playlist", "show", str(EXAMPLE), "--screen", "sign-shoes-01", "--zone",
                  "shoes", "--at", "2026-06-07T09:00:00+02:00")
    assert json.loads(sunday.stdout)["playlist"] == "store-default"


def test_bad_file_lists_every_problem_and_loads_nothing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"playlists": [{"id": "x", "zones": ["*"], "items": [
        {"kind": "text", "id": "a", "customer_id": "C1"}],
        "schedule": {"from": "9:00", "to": "10:00"}}]}))
    out = _run("playlist", "load", str(bad), "--db", str(tmp_path / "edge.db"))
    assert out.returncode == 2
    assert "personal data" in out.stderr and "HH:MM" in out.stderr


def test_load_stores_the_version_the_edge_delivers(tmp_path):
    db_path = tmp_path / "edge.db"
    out = _run("playlist", "load", str(EXAMPLE), "--db", str(db_path))
    assert out.returncode == 0, out.stderr
    db = edge_db.connect(db_path)
    version = db.conn.execute("SELECT version FROM signage_playlists").fetchone()[0]
    assert version in out.stdout


def test_render_writes_the_frame(tmp_path):
    item = tmp_path / "item.json"
    item.write_text(json.dumps({"kind": "text", "id": "t", "title": "Été"}))
    out = _run("render", str(item), "--out", str(tmp_path / "f.png"), "--profile", "portrait")
    assert out.returncode == 0, out.stderr
    assert Image.open(tmp_path / "f.png").size == (1080, 1920)
