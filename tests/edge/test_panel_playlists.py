"""The playlist and schedule editor: every form, every refusal, and a real browser whose
edit reaches a screen's retained command topic on a real Mosquitto and a real player."""
# ruff: noqa: F811  (pytest fixtures imported from panel_fixtures are parameters here)

from __future__ import annotations

import dataclasses
import json
import queue
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from contract.commands import SetPlaylist, parse_command
from contract.playlists import parse_playlists, resolve
from contract.screen_items import parse_item
from contract.topics import command_topic
from edge import playlist_edits as edits
from edge.panel.playlists import FormError, item_from_form, settings_from_form

from .panel_fixtures import (  # noqa: F401
    MANAGER,
    STAFF,
    _panel_db_template,
    app,
    client,
    csrf_token,
    login,
    panel_db,
)

XSS = "<script>alert('x')</script>"
SHOE = "09506000134352"


@pytest.fixture
def mgr(client, panel_db: Path):
    conn = sqlite3.connect(panel_db, isolation_level=None)
    conn.execute("INSERT INTO devices (device_id, kind, zone, state) VALUES"
                 " ('sign-01', 'signage', 'shoes', 'online')")
    conn.execute("INSERT INTO products (gtin, name, brand, price_cents, currency) VALUES"
                 " (?, ?, 'Acme', 8999, 'EUR')", (SHOE, XSS))
    conn.execute("INSERT INTO product_content (gtin, promo, images, updated_at) VALUES"
                 " (?, '-20 %', ?, 0)", (SHOE, json.dumps(["a" * 64])))
    conn.close()
    login(client, MANAGER)
    return client


def _stored(db: Path) -> tuple[dict[str, Any], str]:
    conn = sqlite3.connect(db)
    try:
        doc, version = conn.execute("SELECT doc, version FROM signage_playlists").fetchone()
    finally:
        conn.close()
    return json.loads(doc), version


def _form(c, db: Path, **fields: Any) -> dict[str, Any]:
    return {"csrf_token": csrf_token(c, "/playlists/"), "version": _stored(db)[1], **fields}


def _flash(r) -> list[str]:
    return re.findall(r'class="flash" role="status">([^<]*)<', r.get_data(as_text=True))


EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def test_manager_creates_edits_and_deletes_a_playlist_and_its_items(mgr, panel_db):
    r = mgr.post("/playlists/new", data=_form(
        mgr, panel_db, id="weekend", zones=["shoes"], days=["sat", "sun"], **{"from": "10:00"},
        to="19:00", start_date="2026-06-01", end_date="2026-06-30", priority="20",
        kind="promotion", title="Soldes", body=XSS, badge="-30 %", duration_s="12"))
    assert r.status_code == 302 and r.location == "/playlists/weekend/edit"
    doc, v1 = _stored(panel_db)
    weekend = edits.find(doc, "weekend")
    assert weekend["schedule"] == {"days": ["sat", "sun"], "from": "10:00", "to": "19:00",
                                   "start_date": "2026-06-01", "end_date": "2026-06-30"}
    assert weekend["priority"] == 20 and weekend["zones"] == ["shoes"]
    [promo] = weekend["items"]
    assert promo["body"] == XSS and promo["duration_s"] == 12.0
    html = mgr.get("/playlists/weekend/edit").get_data(as_text=True)
    assert XSS not in html and "&lt;script&gt;" in html  # escaped in the editor

    # A spotlight is filled from the product tables (what screens may show, no more).
    r = mgr.post("/playlists/weekend/items", data=_form(mgr, panel_db, kind="spotlight",
                                                        gtin=SHOE))
    assert r.status_code == 302
    spot = edits.find(_stored(panel_db)[0], "weekend")["items"][1]
    assert spot == {"kind": "spotlight", "id": spot["id"], "gtin": SHOE, "name": XSS,
                    "brand": "Acme", "price_cents": 8999, "currency": "EUR",
                    "promo": "-20 %", "image": "a" * 64, "online": False,
                    "duration_s": 10.0}
    assert XSS not in mgr.get("/playlists/weekend/edit").get_data(as_text=True)

    # Edit the promotion, move the spotlight up, delete the promotion.
    r = mgr.post(f"/playlists/weekend/items/{promo['id']}", data=_form(
        mgr, panel_db, kind="text", title="Bienvenue", duration_s="5"))
    assert r.status_code == 302
    items = edits.find(_stored(panel_db)[0], "weekend")["items"]
    assert items[0] == {"kind": "text", "id": promo["id"], "title": "Bienvenue",
                        "duration_s": 5.0}
    r = mgr.post(f"/playlists/weekend/items/{spot['id']}/move",
                 data=_form(mgr, panel_db, direction="up"))
    assert r.status_code == 302
    assert [i["id"] for i in edits.find(_stored(panel_db)[0], "weekend")["items"]] == [
        spot["id"], promo["id"]]
    r = mgr.post(f"/playlists/weekend/items/{promo['id']}/delete", data=_form(mgr, panel_db))
    assert r.status_code == 302
    r = mgr.post(f"/playlists/weekend/items/{spot['id']}/delete", data=_form(mgr, panel_db))
    assert r.status_code == 400 and "at least one item" in r.get_data(as_text=True)

    # Settings: the default playlist of every zone (a default has no schedule).
    r = mgr.post("/playlists/weekend/settings", data=_form(
        mgr, panel_db, zones=["*"], default="1", days=EVERY_DAY, priority="0"))
    assert r.status_code == 302
    weekend = edits.find(_stored(panel_db)[0], "weekend")
    assert weekend["default"] is True and "schedule" not in weekend
    assert weekend["zones"] == ["*"]
    # What the screen would play now: the morning (fixture) playlist or this default.
    page = mgr.get("/playlists/").get_data(as_text=True)
    assert re.search(r'data-screen="sign-01">.*?<td>(morning|weekend)</td>', page, re.S)

    r = mgr.post("/playlists/weekend/delete", data=_form(mgr, panel_db))
    assert r.status_code == 302
    doc, v_end = _stored(panel_db)
    assert edits.find(doc, "weekend") is None and edits.find(doc, "morning") is not None
    assert v_end != v1
    parse_playlists(doc)  # what is stored always loads on a screen


def test_a_form_drawn_before_another_change_is_refused_and_changes_nothing(mgr, panel_db):
    stale = _form(mgr, panel_db, kind="text", title="first", duration_s="5")
    assert mgr.post("/playlists/morning/items", data=stale).status_code == 302
    doc, version = _stored(panel_db)
    r = mgr.post("/playlists/morning/items", data={**stale, "title": "second"})
    assert r.status_code == 409 and "saved meanwhile" in r.get_data(as_text=True)
    assert _stored(panel_db) == (doc, version)


@pytest.mark.parametrize("path, fields, message", [
    ("/playlists/new", {"id": "a/b"}, "Name the playlist"),
    ("/playlists/new", {"id": "takeover-x"}, "Name the playlist"),
    ("/playlists/new", {"id": "morning", "zones": ["shoes"], "days": EVERY_DAY,
                        "kind": "text", "title": "x"}, "exists already"),
    ("/playlists/new", {"id": "n", "days": EVERY_DAY}, "Choose the screens or zones"),
    ("/playlists/new", {"id": "n", "zones": ["mars"]}, "from the list"),
    ("/playlists/new", {"id": "n", "screens": ["nfc-01"]}, "from the list"),
    ("/playlists/new", {"id": "n", "zones": ["*"], "priority": "9999"}, "Priority"),
    ("/playlists/new", {"id": "n", "zones": ["*"], "priority": "1e3"}, "Priority"),
    ("/playlists/new", {"id": "n", "zones": ["*"]}, "at least one day"),
    ("/playlists/new", {"id": "n", "zones": ["*"], "days": ["someday"]}, "days from the list"),
    ("/playlists/new", {"id": "n", "zones": ["*"], "days": EVERY_DAY, "from": "25:00",
                        "to": "10:00"}, "HH:MM"),
    ("/playlists/new", {"id": "n", "zones": ["*"], "days": EVERY_DAY, "from": "10:00"},
     "HH:MM"),
    ("/playlists/new", {"id": "n", "zones": ["*"], "days": EVERY_DAY, "from": "10:00",
                        "to": "10:00"}, "same time"),
    ("/playlists/new", {"id": "n", "zones": ["*"], "days": EVERY_DAY,
                        "start_date": "2026-02-30"}, "YYYY-MM-DD"),
    ("/playlists/new", {"id": "n", "zones": ["*"], "days": EVERY_DAY,
                        "start_date": "2026-07-02", "end_date": "2026-07-01"}, "after the last"),
    ("/playlists/new", {"id": "n", "zones": ["*"], "days": EVERY_DAY, "kind": "video"},
     "what the item shows"),
    ("/playlists/morning/items", {"kind": "text"}, "needs a title"),
    ("/playlists/morning/items", {"kind": "promotion"}, "needs a title"),
    ("/playlists/morning/items", {"kind": "image"}, "needs an image"),
    ("/playlists/morning/items", {"kind": "image", "image": "../../etc/passwd"}, "SHA-256"),
    ("/playlists/morning/items", {"kind": "spotlight", "gtin": "00000000000017"},
     "Pick a product"),
    ("/playlists/morning/items", {"kind": "text", "title": "x" * 121}, "too long"),
    ("/playlists/morning/items", {"kind": "text", "title": "a\x00b"}, "control characters"),
    ("/playlists/morning/items", {"kind": "text", "title": "x", "duration_s": "nan"},
     "from 1 to"),
    ("/playlists/morning/items", {"kind": "text", "title": "x", "duration_s": "0"},
     "from 1 to"),
    ("/playlists/morning/items", {"kind": "text", "title": "x", "duration_s": "soon"},
     "number of seconds"),
    ("/playlists/morning/items/hello", {"kind": "text"}, "needs a title"),
    ("/playlists/morning/items/hello/move", {"direction": "sideways"}, "No such item"),
    ("/playlists/settings", {"timezone": "Mars/Olympus"}, "Unknown time zone"),
    ("/playlists/takeover", {"zone": "kitchen", "minutes": "30", "kind": "text",
                             "title": "x"}, "zone that has screens"),
    ("/playlists/takeover", {"zone": "shoes", "minutes": "0", "kind": "text",
                             "title": "x"}, "1 to 720 minutes"),
    ("/playlists/takeover", {"zone": "shoes", "minutes": "-5", "kind": "text",
                             "title": "x"}, "1 to 720 minutes"),
])
def test_every_bad_field_is_a_clear_400_and_changes_nothing(mgr, panel_db, path, fields,
                                                           message):
    before = _stored(panel_db)
    r = mgr.post(path, data=_form(mgr, panel_db, **fields))
    assert r.status_code == 400, r.get_data(as_text=True)[:500]
    assert message in " ".join(_flash(r)), _flash(r)
    assert _stored(panel_db) == before


def test_unknown_playlists_and_items_are_404(mgr, panel_db):
    before = _stored(panel_db)
    assert mgr.get("/playlists/nope/edit").status_code == 404
    for path in ("/playlists/nope/delete", "/playlists/morning/items/nope",
                 "/playlists/morning/items/nope/delete"):
        assert mgr.post(path, data=_form(mgr, panel_db, kind="text", title="x")
                        ).status_code == 404, path
    assert _stored(panel_db) == before


def test_staff_cannot_edit_playlists(client, panel_db):
    login(client, STAFF)
    before = _stored(panel_db)
    r = client.post("/playlists/morning/delete", data={
        "csrf_token": csrf_token(client, "/"), "version": before[1]})
    assert r.status_code == 403 and _stored(panel_db) == before
    assert client.get("/playlists/").status_code == 403


def test_push_a_promotion_to_a_zone_for_a_while(mgr, panel_db):
    r = mgr.post("/playlists/takeover", data=_form(
        mgr, panel_db, zone="shoes", minutes="45", kind="promotion", title="Flash sale",
        badge="-50 %"))
    assert r.status_code == 302
    doc, _v = _stored(panel_db)
    [takeover] = [p for p in doc["playlists"] if p["id"].startswith("takeover-shoes-")]
    assert takeover["priority"] == edits.TAKEOVER_PRIORITY and takeover["zones"] == ["shoes"]
    loaded = parse_playlists(doc)
    import time

    now = time.time()
    assert resolve(loaded, "sign-01", "shoes", now).id == takeover["id"]
    # After it: whatever the store's own schedule plays then (maybe nothing at that hour:
    # the stored playlists are dayparted), but not the takeover.
    after = resolve(loaded, "sign-01", "shoes", now + 46 * 60)
    assert after is None or after.id != takeover["id"]
    assert resolve(loaded, "sign-01", "shoes", now + 44 * 60).id == takeover["id"]
    page = mgr.get("/playlists/").get_data(as_text=True)
    assert re.search(r'data-playlist="takeover-shoes-[^"]+" class="takeover"', page)
    assert re.search(r'data-screen="sign-01">.*?<td>takeover-shoes-', page, re.S)


def test_time_zone_is_set_for_the_whole_file(mgr, panel_db):
    r = mgr.post("/playlists/settings", data=_form(mgr, panel_db, timezone="America/Montreal"))
    assert r.status_code == 302 and _stored(panel_db)[0]["timezone"] == "America/Montreal"


# -- the form parsers: whatever a browser sends, an item screens accept or a clear error --
FIELDS = st.dictionaries(
    st.sampled_from(["kind", "gtin", "title", "body", "badge", "image", "duration_s"]),
    st.one_of(st.sampled_from(["text", "promotion", "image", "spotlight", "a" * 64,
                               "10", "3600", "0.5", "-1", "inf", "", SHOE]),
              st.text(max_size=700)), max_size=7)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=FIELDS)
def test_item_form_gives_a_valid_item_or_a_form_error(mgr, fields):
    with mgr.application.test_request_context():
        try:
            item = item_from_form(MultiDict(fields))
        except FormError as exc:
            assert str(exc)
            return
    assert parse_item(item).kind == fields["kind"]


SETTINGS = st.fixed_dictionaries({}, optional={
    "priority": st.one_of(st.integers(-2000, 2000).map(str), st.text(max_size=6)),
    "zones": st.lists(st.sampled_from(["*", "shoes", "kitchen", "x"]), max_size=3),
    "screens": st.lists(st.sampled_from(["sign-01", "evil"]), max_size=2),
    "default": st.sampled_from(["", "1"]),
    "days": st.lists(st.sampled_from(EVERY_DAY + ["xyz"]), max_size=8),
    "from": st.one_of(st.sampled_from(["08:00", "23:30", "24:00"]), st.text(max_size=6)),
    "to": st.one_of(st.sampled_from(["12:00", "01:00", "08:00"]), st.text(max_size=6)),
    "start_date": st.one_of(st.dates().map(str), st.text(max_size=10)),
    "end_date": st.one_of(st.dates().map(str), st.text(max_size=10)),
})


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=SETTINGS)
def test_settings_form_gives_a_valid_playlist_or_a_form_error(mgr, fields):
    form = MultiDict([(k, v) for k, vs in fields.items()
                      for v in (vs if isinstance(vs, list) else [vs])])
    with mgr.application.test_request_context():
        try:
            out = settings_from_form(form, {"sign-01"}, {"shoes", "kitchen"})
        except FormError as exc:
            assert str(exc)
            return
    parse_playlists({"playlists": [{"id": "p", **out, "items": [
        {"kind": "text", "id": "t", "title": "x"}]}]})


# -- a real browser, a real edge, a real broker ------------------------------------------
@pytest.mark.integration
def test_a_playlist_edited_in_chromium_reaches_the_screens_retained_topic(
        edge_config, broker, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from edge.node import EdgeNode
    from edge.panel.users import create_user
    from tests.signage.test_e2e import Screen
    from vitrine.broker import free_port

    from .conftest import make_client, wait_until
    from .test_panel_browser import CHROMIUM, CHROMIUM_ARGS, TABLET, _shot

    cfg = dataclasses.replace(edge_config, panel_port=free_port())  # loopback, plain HTTP
    node = EdgeNode(cfg)
    create_user(cfg.db_path, "boss", "playlist-test-password", "manager")
    node.start()
    # A real signage player logged in as sign-01 (zone shoes); the broker lets only sign-01
    # read its command topic, so the test listens through the player's own session.
    got: queue.Queue = queue.Queue()
    player: Screen | None = Screen(broker, tmp_path)
    assert player is not None
    player.session.on_command(got.put)
    player.start()
    # A daypart around now, in the file's time zone (UTC: a new store file), which may
    # cross midnight: the player picks it by its own clock.
    now = datetime.now(UTC)
    start, end = (f"{now + timedelta(minutes=m):%H:%M}" for m in (-60, 60))

    def playlists_with(title: str) -> SetPlaylist:
        while True:  # the first retained one may be an older version
            cmd = got.get(timeout=15)
            if isinstance(cmd, SetPlaylist) and title in json.dumps(
                    cmd.playlists, ensure_ascii=False):
                return cmd

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         timeout=20_000, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=TABLET, has_touch=True, is_mobile=True)
                page.set_default_timeout(10_000)
                # http://127.0.0.1 is a secure context: the Secure session cookie is kept.
                page.goto(node.panel_url + "/playlists/")
                page.fill("#username", "boss")
                page.fill("#password", "playlist-test-password")
                page.click("form.login button[type=submit]")
                page.fill("#new-playlist-id", "shoes-weekday")
                page.select_option("#new-playlist select[name=zones]", ["shoes"])
                page.fill("#new-playlist input[name=from]", start)
                page.fill("#new-playlist input[name=to]", end)
                page.select_option("#new-playlist select[name=kind]", "text")
                page.fill("#new-playlist input[name=title]", "Nouvelle collection")
                page.click("#new-playlist button[type=submit]")
                expect(page.locator("#playlist-name")).to_have_text("shoes-weekday")
                first = playlists_with("Nouvelle collection")
                mine = first.playlists["playlists"]
                assert [p["id"] for p in mine] == ["shoes-weekday"]
                assert mine[0]["schedule"] == {"from": start, "to": end}
                [item] = mine[0]["items"]
                # The player on the screen resolves it and shows the item.
                wait_until(lambda: any(s[0] == item["id"] for s in player.shown), timeout=10)

                # Edit the item in place: the screen gets the new version, whole.
                row = page.locator("#items tr[data-item]").first
                row.locator("input[name=title]").fill("Collection d'été")
                row.locator("button[type=submit]").first.click()
                second = playlists_with("Collection d'été")
                assert second.version != first.version
                assert "Nouvelle collection" not in json.dumps(second.playlists)
                cached = tmp_path / "screen" / "playlist.json"  # the player's disk cache
                wait_until(lambda: "Collection d'été" in cached.read_text("utf-8"),
                           timeout=10)
                _shot(page, "playlists", tmp_path)
            finally:
                browser.close()
        # Retained: a screen that connects now (the player gone) gets it from the broker.
        player.close()
        player = None
        late: queue.Queue = queue.Queue()
        again = make_client(broker.port, "sign-01", "sign-01-pw")
        again.on_message = lambda cl, u, msg: late.put((msg.retain, json.loads(msg.payload)))
        again.subscribe(command_topic(broker.store_id, "signage", "sign-01"), qos=1)
        retained, cmd = late.get(timeout=10)
        assert retained and cmd["cmd"] == "set_playlist"
        assert cmd["version"] == second.version
        parse_command(cmd)  # what the screen's own parser accepts
        again.disconnect()
        again.loop_stop()
    finally:
        if player is not None:
            player.close()
        node.stop()


def test_a_refused_form_is_drawn_again_as_typed_and_escaped(mgr, panel_db):
    r = mgr.post("/playlists/new", data=_form(
        mgr, panel_db, id="weekend", zones=["shoes"], days=["sat"], priority="99999",
        kind="promotion", title=XSS, duration_s="12.5"))
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "Priority" in " ".join(_flash(r))
    form = re.search(r'id="new-playlist".*?</form>', html, re.S).group(0)
    assert 'value="weekend"' in form and 'value="99999"' in form and 'value="12.5"' in form
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in form and XSS not in html
    assert re.search(r'value="sat" checked', form) and not re.search(r'value="sun" checked',
                                                                      form)
    assert re.search(r'<option value="shoes" selected>', form)
    takeover = re.search(r'id="takeover".*?</form>', html, re.S).group(0)
    assert 'name="title" maxlength="120" value=""' in takeover  # the other form: blank


@pytest.mark.integration
def test_a_picture_uploaded_with_an_item_goes_to_the_edges_asset_cache(edge):
    """Inside the edge node: the screens' asset cache gets the picture, the item its id."""
    import hashlib
    import io

    from PIL import Image

    from edge.panel import create_app
    from edge.panel.users import create_user

    create_user(edge.cfg.db_path, *MANAGER, "manager")
    c = create_app({"TESTING": True, "SECRET_KEY": "t"}, node=edge).test_client()
    login(c, MANAGER)
    png = io.BytesIO()
    Image.new("RGB", (800, 450), (200, 30, 60)).save(png, "PNG")
    picture = png.getvalue()
    token = csrf_token(c, "/playlists/")
    r = c.post("/playlists/new", content_type="multipart/form-data", data={
        "csrf_token": token, "version": "", "id": "sale", "zones": ["shoes"],
        "days": EVERY_DAY, "kind": "image", "image_file": (io.BytesIO(picture), "sale.png")})
    assert r.status_code == 302, r.get_data(as_text=True)[:400]
    doc, version = _stored(Path(edge.cfg.db_path))
    [item] = edits.find(doc, "sale")["items"]
    assert item["image"] == hashlib.sha256(picture).hexdigest()
    assert edge.assets.get(item["image"]) == picture
    # Offered again for the next item; not an image, or too many pixels: refused, nothing
    # stored.
    assert item["image"] in c.get("/playlists/sale/edit").get_data(as_text=True)
    big = io.BytesIO()
    Image.new("1", (5000, 4000)).save(big, "PNG")
    for name, data, why in (("x.svg", b"<svg onload=alert(1)/>", "JPEG or PNG"),
                            ("x.gif", b"GIF89a" + b"\0" * 20, "JPEG or PNG"),
                            ("big.png", big.getvalue(), "4096 x 4096")):
        r = c.post("/playlists/sale/items", content_type="multipart/form-data", data={
            "csrf_token": token, "version": version, "kind": "promotion", "title": "x",
            "image_file": (io.BytesIO(data), name)})
        assert r.status_code == 400 and why in " ".join(_flash(r)), name
        assert hashlib.sha256(data).hexdigest() not in edge.assets
    assert _stored(Path(edge.cfg.db_path))[1] == version


def test_the_standalone_panel_cannot_take_pictures(mgr, panel_db):
    import io

    r = mgr.post("/playlists/morning/items", content_type="multipart/form-data", data={
        **_form(mgr, panel_db, kind="image"), "image_file": (io.BytesIO(b"\x89PNG"), "a.png")})
    assert r.status_code == 400 and "inside the edge node" in " ".join(_flash(r))
