"""firmware_sim.shelf_label: only verified bitmaps are shown, and the label says what it shows."""

from __future__ import annotations

from types import SimpleNamespace

from contract.eslabel import decode_planes
from edge.label_render import LabelContent, render_and_pack
from edge.labels import LabelService
from firmware_sim.shelf_label import SimLabel

GTIN = "04063511002891"


def _cmd(price: int) -> SimpleNamespace:
    bitmap = render_and_pack(LabelContent(GTIN, "Trail Runner 2", "Kestrel", price, "EUR"))
    payload = LabelService.command("esl-1", LabelContent(GTIN, "x", "y", price, "EUR"), price,
                                   bitmap, 1.0)
    return SimpleNamespace(**payload)


def test_label_verifies_stores_and_acks_the_hash_it_shows(tmp_path):
    reports = []
    label = SimLabel("esl-1", lambda ch, body: reports.append((ch, body)), store_dir=tmp_path)
    cmd = _cmd(11999)
    label.on_command(cmd)
    assert reports == [("label", {"ok": True, "hash": cmd.hash, "shown_hash": cmd.hash})]
    assert label.shown_hash == cmd.hash and label.price_cents == 11999
    stored = (tmp_path / "esl-1.planes").read_text()
    assert decode_planes(cmd.width, cmd.height, stored, cmd.hash).hash == cmd.hash


def test_damaged_bitmap_is_refused_and_the_old_one_stays(tmp_path):
    reports = []
    label = SimLabel("esl-1", lambda ch, body: reports.append(body))
    good = _cmd(11999)
    label.on_command(good)
    bad = _cmd(9999)
    bad.planes = bad.planes[:-8] + "AAAAAAA="
    label.on_command(bad)
    assert label.shown_hash == good.hash and label.refused == 1
    assert reports[-1]["ok"] is False and reports[-1]["shown_hash"] == good.hash
    assert "hash" in reports[-1]["error"] or "decodable" in reports[-1]["error"] \
        or "bytes" in reports[-1]["error"]
