"""Session rules on a real (migrated) edge database: what the kiosk's session_end relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.db import connect, migrate
from edge.sessions import Sessions

T0 = 1_767_225_600.0


@pytest.fixture
def conn(tmp_path: Path):
    db = connect(tmp_path / "edge.db")
    migrate(db)
    yield db.conn
    db.close()


def test_end_closes_the_kiosk_session_and_the_next_reads_are_anonymous(conn) -> None:
    sessions = Sessions(conn, gap_s=90, kiosk_idle_s=60)
    before = sessions.touch(conn, "kiosk-01", T0)
    mine = sessions.identify(conn, "kiosk-01", "C1", T0 + 1, single_user=True)
    assert mine.kind == "kiosk" and mine.session_id != before.session_id
    assert sessions.touch(conn, "kiosk-01", T0 + 5) is mine
    ended, fresh = sessions.end(conn, "kiosk-01", T0 + 6, "done")
    assert ended == mine.session_id
    assert fresh.customer_id is None and fresh.kind == "anonymous"
    assert sessions.touch(conn, "kiosk-01", T0 + 7) is fresh
    row = conn.execute("SELECT ended_at, end_reason FROM sessions WHERE session_id = ?",
                       (mine.session_id,)).fetchone()
    assert row == (T0 + 6, "done")
    # Nobody identified: the anonymous session ends, and a fresh one starts.
    ended, again = sessions.end(conn, "kiosk-01", T0 + 8, "timeout")
    assert ended == fresh.session_id and again.session_id != fresh.session_id
    assert again.customer_id is None
    # A device with no open session at all (a fresh edge): nothing to end.
    assert sessions.end(conn, "kiosk-02", T0 + 8)[0] is None
    with pytest.raises(ValueError):
        sessions.end(conn, "kiosk-01", T0 + 9, "because")


def test_state_survives_a_restart_and_ended_sessions_stay_ended(conn) -> None:
    sessions = Sessions(conn, gap_s=90, kiosk_idle_s=60)
    mine = sessions.identify(conn, "kiosk-01", "C1", T0, single_user=True)
    sessions.flush(conn)
    assert Sessions(conn, 90, 60).touch(conn, "kiosk-01", T0 + 1).session_id == mine.session_id
    sessions.end(conn, "kiosk-01", T0 + 2)
    reloaded = Sessions(conn, 90, 60)
    assert reloaded.touch(conn, "kiosk-01", T0 + 3).customer_id is None


def test_identification_at_a_shared_reader_never_joins_its_anonymous_session(conn) -> None:
    sessions = Sessions(conn, gap_s=90, kiosk_idle_s=60)
    anon = sessions.touch(conn, "nfc-01", T0)
    read = sessions.identify(conn, "nfc-01", "C1", T0 + 1, single_user=False)
    assert read.kind == "read" and read.session_id != anon.session_id
    assert sessions.touch(conn, "nfc-01", T0 + 2) is anon and anon.customer_id is None
    # A one-read session is closed at once, and a restart does not reopen it.
    assert Sessions(conn, 90, 60).touch(conn, "nfc-01", T0 + 3).session_id == anon.session_id


def test_another_customer_at_the_kiosk_ends_the_previous_ones_session(conn) -> None:
    sessions = Sessions(conn, gap_s=90, kiosk_idle_s=60)
    first = sessions.identify(conn, "kiosk-01", "C1", T0, single_user=True)
    assert sessions.identify(conn, "kiosk-01", "C1", T0 + 10, single_user=True) is first
    second = sessions.identify(conn, "kiosk-01", "C2", T0 + 20, single_user=True)
    assert second.customer_id == "C2" and second.session_id != first.session_id
    assert conn.execute("SELECT end_reason FROM sessions WHERE session_id = ?",
                        (first.session_id,)).fetchone() == ("next_customer",)


def test_whatever_deletes_a_raw_read_takes_its_attribution_with_it(conn) -> None:
    """Retention or erasure: no customer id may outlive the read it was attached to."""
    for msg in ("m1", "m2"):
        conn.execute("INSERT INTO events (device_id, msg_id, channel, received_at, payload) "
                     "VALUES ('qr-01', ?, 'qr', ?, '{}')", (msg, T0))
        conn.execute("INSERT INTO event_customers VALUES ('qr-01', ?, 'C1')", (msg,))
    conn.execute("DELETE FROM events WHERE msg_id = 'm1'")  # e.g. retention
    assert conn.execute("SELECT msg_id FROM event_customers").fetchall() == [("m2",)]
