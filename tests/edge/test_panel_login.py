"""Panel login and sessions against the real panel over HTTP (issue 11, section 3).

A browser here is a real HTTP client with its own cookie jar; the panel is
served by werkzeug's threaded server, as the edge node serves it.
"""
# ruff: noqa: F811  (pytest fixtures imported from panel_fixtures are parameters here)

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.cli import main as edge_cli
from edge.panel import users
from edge.panel.login_guard import LoginThrottle
from tests.conftest import TEST_PASSWORD_METHOD

from .panel_fixtures import MANAGER, STAFF, _panel_db_template, panel_db  # noqa: F401
from .panel_http import Browser, Panel


@pytest.fixture
def panel(panel_db: Path) -> Iterator[Panel]:
    p = Panel(panel_db)
    yield p
    p.stop()


def test_a_stranger_cannot_lock_out_the_manager(panel: Panel) -> None:
    tablet = Browser(panel)
    assert tablet.login(MANAGER)[0] == 302  # the manager's tablet, used before
    assert tablet.logout() == 302
    stranger = Browser(panel)
    statuses = [stranger.login((MANAGER[0], f"guess-{i}"))[0] for i in range(30)]
    assert statuses[:3] == [401] * 3 and set(statuses[3:]) == {429}  # slowed at once
    # The right password from the manager's tablet works at once, at the same address.
    status, headers, _ = tablet.login(MANAGER)
    assert status == 302 and tablet.logged_in()
    # And even the stranger's throttle is a delay, not a lock: once it has passed,
    # the right password works from there too.
    throttle: LoginThrottle = panel.app.extensions["vitrine_panel_throttle_user"]
    throttle.forget(f"{MANAGER[0]}|ip:127.0.0.1")
    panel.app.extensions["vitrine_panel_throttle"].forget("ip:127.0.0.1")
    assert stranger.login(MANAGER)[0] == 302


def test_delays_grow_and_are_announced(panel: Panel) -> None:
    b = Browser(panel)
    for _ in range(3):
        assert b.login((STAFF[0], "wrong"))[0] == 401
    status, headers, text = b.login(STAFF)  # right password, but this client must wait
    assert status == 429 and headers["Retry-After"] == "1" and "try again in 1 s" in text
    time.sleep(1.1)
    assert b.login((STAFF[0], "wrong"))[0] == 401
    status, headers, _ = b.login(STAFF)
    assert status == 429 and headers["Retry-After"] == "2"
    clock = [0.0]
    t = LoginThrottle(clock=lambda: clock[0])
    waits = []
    for _ in range(14):
        t.fail("k")
        waits.append(t.wait("k"))
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]


def test_refusals_do_not_tell_which_names_exist(panel: Panel) -> None:
    pages = {}
    for name in (MANAGER[0], "nobody-here"):
        b = Browser(panel, headers={})
        answers = [b.login((name, "wrong")) for _ in range(5)]
        pages[name] = [(status, re.findall(r'class="flash"[^>]*>([^<]*)<', text))
                       for status, _, text in answers]
        panel.app.extensions["vitrine_panel_throttle"].forget("ip:127.0.0.1")
    assert pages[MANAGER[0]] == pages["nobody-here"]
    assert "locked" not in repr(pages)


def test_forwarded_addresses_are_ignored_unless_configured(panel_db: Path) -> None:
    plain = Panel(panel_db, PANEL_THROTTLE_LIMIT=5)
    try:
        for i in range(5):  # spoofed addresses change nothing: the socket's address counts
            b = Browser(plain, headers={"X-Forwarded-For": f"10.0.0.{i}"})
            assert b.login((f"user{i}", "guess"))[0] == 401
        b = Browser(plain, headers={"X-Forwarded-For": "10.9.9.9"})
        assert b.login(("someone", "guess"))[0] == 429
    finally:
        plain.stop()
    proxied = Panel(panel_db, PANEL_THROTTLE_LIMIT=5, PANEL_TRUSTED_PROXIES=1)
    try:
        # Behind a configured proxy, 20 failures from one client do not lock everyone out.
        attacker = Browser(proxied, headers={"X-Forwarded-For": "10.0.0.66"})
        assert {attacker.login((f"user{i}", "guess"))[0] for i in range(20)} == {401, 429}
        staff = Browser(proxied, headers={"X-Forwarded-For": "10.0.0.7"})
        assert staff.login(STAFF)[0] == 302 and staff.logged_in()
    finally:
        proxied.stop()


@pytest.mark.parametrize("target", ["//evil.example/", "/\t/evil.example/", "/\\evil.example",
                                    "/\r\nSet-Cookie: x=1", "https://evil.example/",
                                    "/\n/evil.example", " //evil.example", "/caf\u00e9",
                                    "/" + "a" * 5000])
def test_login_redirects_only_to_this_site(panel: Panel, target: str) -> None:
    b = Browser(panel)
    status, headers, _ = b.login(MANAGER, next_=target)
    assert status == 302 and headers["Location"] == "/", headers["Location"]


def test_tab_in_next_from_the_query_string(panel: Panel) -> None:
    b = Browser(panel)
    _, _, page = b.request("GET", "/auth/login?next=/%09/evil.example/")
    carried = re.search(r'name="next" value="([^"]*)"', page).group(1)
    status, headers, _ = b.login(MANAGER, next_=carried.replace("&#9;", "\t"))
    assert status == 302 and headers["Location"] == "/"


def test_same_site_next_is_kept(panel: Panel) -> None:
    status, headers, _ = Browser(panel).login(MANAGER, next_="/quarantine/?status=reviewed")
    assert status == 302 and headers["Location"] == "/quarantine/?status=reviewed"


def test_logout_ends_the_session_server_side(panel: Panel) -> None:
    b = Browser(panel)
    b.login(MANAGER)
    stolen = dict(b.cookies)
    assert b.logout() == 302
    thief = Browser(panel)
    thief.cookies = stolen
    status, headers, _ = thief.request("GET", "/devices/")
    assert status == 302 and headers["Location"].startswith("/auth/login")
    assert thief.request("GET", "/api/metrics")[0] == 401


def test_logging_in_again_ends_the_previous_session(panel: Panel) -> None:
    b = Browser(panel)
    b.login(STAFF)
    before = dict(b.cookies)
    assert b.login(MANAGER)[0] == 302
    old = Browser(panel)
    old.cookies = before
    assert not old.logged_in() and b.logged_in()


def test_password_reset_ends_every_session_of_that_user(panel: Panel, panel_db: Path,
                                                        tmp_path: Path) -> None:
    manager, staff = Browser(panel), Browser(panel)
    manager.login(MANAGER)
    staff.login(STAFF)
    pw_file = tmp_path / "pw"
    assert edge_cli(["panel-user", "--db", str(panel_db), "add", MANAGER[0], "--role",
                     "manager", "--reset", "--password-file", str(pw_file)]) == 0
    assert not manager.logged_in()
    assert staff.logged_in()  # other users keep theirs
    assert manager.login((MANAGER[0], pw_file.read_text().strip()))[0] == 302
    assert manager.logged_in()


def test_a_restart_ends_sessions_even_with_the_same_key(panel_db: Path) -> None:
    first = Panel(panel_db)
    b = Browser(first)
    b.login(MANAGER)
    assert b.logged_in()
    first.stop()
    second = Panel(panel_db)
    try:
        b.panel = second
        assert not b.logged_in()
    finally:
        second.stop()


def test_production_hashes_passwords_at_full_scrypt_cost() -> None:
    """The suite hashes at a lower cost (tests/conftest.py); a process of its own does not."""
    assert users.PASSWORD_METHOD == TEST_PASSWORD_METHOD  # the override is what runs here
    out = subprocess.run([sys.executable, "-c", "from edge.panel.users import _dummy_hash; "
                          "print(_dummy_hash())"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("scrypt:32768:8:1$"), out.stdout
