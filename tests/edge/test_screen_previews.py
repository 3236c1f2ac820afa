"""edge.screen_previews: a screen's latest thumbnail kept per screen, checked, never an event."""

from __future__ import annotations

import base64
import json
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edge.catalogue import Catalogue
from edge.db import connect, migrate
from edge.identity import Identifier
from edge.inbound import Inbound
from edge.metrics import Metrics
from edge.pipeline import Pipeline
from edge.registry import Registry
from edge.screen_previews import PreviewError, check_preview
from edge.seed import seed
from edge.sessions import Sessions

from .conftest import LAYOUT, LOYALTY_KEY

STORE = LAYOUT["store_id"]


def jpeg(size=(320, 180), shade: int = 60, fmt="JPEG") -> str:
    buf = BytesIO()
    Image.new("RGB", size, (30, shade, 90)).save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode()


def preview(**over) -> dict:
    return {"item_id": "welcome", "kind": "text", "trigger": "schedule", "width": 320,
            "height": 180, "frame_width": 1920, "frame_height": 1080, "image": jpeg(), **over}


@pytest.fixture
def pipeline(tmp_path):
    db = connect(tmp_path / "edge.db")
    migrate(db)
    seed(db, LAYOUT)
    p = Pipeline(db, STORE, catalogue=Catalogue(db), identifier=Identifier({"k1": LOYALTY_KEY}),
                 sessions=Sessions(db.conn, 90), registry=Registry(), metrics=Metrics())
    return db, p


def _msg(n: int, device: str, body: dict, ts: float = 1767225600.0) -> Inbound:
    return Inbound(n, 1, f"vitrine/v1/{STORE}/devices/{device}/preview",
                   json.dumps({"msg_id": f"p{n}", "ts": ts, **body}).encode(), ts + 1)


def test_latest_preview_replaces_the_screens_row_and_is_not_an_event(pipeline):
    db, p = pipeline
    r = p.process_batch([_msg(1, "sign-01", preview()),
                         _msg(2, "sign-01", preview(item_id="promo"), ts=1767225610.0),
                         _msg(3, "sign-01", preview(item_id="older"), ts=1767225605.0)])
    assert r.counts["preview"] == 2 and r.counts["preview_older"] == 1
    assert r.done == {"sign-01": ["p1", "p2", "p3"]}  # commit notices name them all
    rows = db.conn.execute("SELECT device_id, item_id, width, height, jpeg FROM "
                           "screen_previews").fetchall()
    assert [(d, i, w, h) for d, i, w, h, _ in rows] == [("sign-01", "promo", 320, 180)]
    assert Image.open(BytesIO(rows[0][4])).size == (320, 180)
    assert db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert db.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_bad_previews_are_quarantined_and_other_kinds_may_not_send_one(pipeline):
    db, p = pipeline
    r = p.process_batch([
        _msg(1, "sign-01", preview(image="not base64!")),
        _msg(2, "sign-01", preview(image=jpeg(fmt="PNG"))),
        _msg(3, "sign-01", preview(width=300)),                       # lies about its size
        _msg(4, "sign-01", preview(frame_width=1080, frame_height=1920)),  # wrong shape
        _msg(5, "sign-01", preview(image=base64.b64encode(b"\xff\xd8\xff garbage").decode())),
        _msg(6, "sign-01", {**preview(), "customer_id": "C1"}),
        _msg(7, "nfc-01", preview())])
    assert r.counts["quarantined.bad_preview"] == 5
    assert r.counts["quarantined.schema"] == 1
    assert r.counts["quarantined.channel_not_allowed"] == 1
    assert db.conn.execute("SELECT count(*) FROM screen_previews").fetchone()[0] == 0


@given(st.binary(max_size=600), st.integers(1, 480), st.integers(1, 480))
@settings(max_examples=150)
def test_any_image_bytes_are_accepted_only_as_the_jpeg_they_claim(data, w, h):
    msg = preview(image=base64.b64encode(data).decode(), width=w, height=h,
                  frame_width=w * 4, frame_height=h * 4)
    try:
        out = check_preview(msg)
    except PreviewError as exc:
        assert str(exc)
    else:
        im = Image.open(BytesIO(out))
        assert im.format == "JPEG" and im.size == (w, h)
