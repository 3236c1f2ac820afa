"""Who tapped what: a read is credited to a customer only on evidence that it is theirs.

Real broker, real edge (writer process), devices publishing as the firmware does. The rule
is edge/sessions.py's; docs/protocol.md section 9 states it for integrators.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time

from contract.loyalty import issue_token
from contract.ndef_codec import encode_uri, encode_uris
from edge import erasure
from edge.config import load_config
from edge.db import connect
from edge.node import EdgeNode
from edge.pipeline import uuid5_str
from firmware_sim.fleet import Fleet, Read
from firmware_sim.layout import DEMO_LAYOUT, load_layout

from .conftest import GTIN, GTIN_2, LOYALTY_KEY, query, wait_until

CARD_UID = "04c0ffee123456"
PHONE_UID = "08a1b2c3"  # a phone's random NFC UID (HCE)
TAG = "04a1b2c3d4e5f6"  # kitchen tag of GTIN_2 (conftest LAYOUT)


def app_token(customer: str, gtin: str | None = None) -> str:
    return issue_token(LOYALTY_KEY, customer, kind="app", now=time.time(), ttl_s=120, gtin=gtin)


def card_ndef(customer: str) -> str:
    token = issue_token(LOYALTY_KEY, customer, kind="card", now=time.time(), ttl_s=86400,
                        card_uid=CARD_UID)
    return base64.b64encode(encode_uri(f"https://loyalty.vitrine.example/t/{token}")).decode()


def uri_records(*uris: str) -> str:
    """An NDEF message of URI records, what a phone's app presents over NFC."""
    return base64.b64encode(encode_uris(*uris)).decode()


def credited(db_path, customer: str) -> set[str]:
    return {r[0] for r in query(db_path, "SELECT msg_id FROM event_customers "
                                         "WHERE customer_id = ?", customer)}


def test_product_scanned_with_the_app_is_credited_and_the_reads_around_it_are_not(
        edge, observer, device, edge_config):
    qr = device("qr-01")
    before = qr.send("qr", {"text": f"https://id.gs1.org/01/{GTIN}"})  # someone else
    mine = qr.send("qr", {"text": "]Q1" + app_token("C0000042", gtin=GTIN_2)})
    after = qr.send("qr", {"text": GTIN})  # someone else again, a second later
    (presence,) = observer.wait_for("presence")
    interests = observer.wait_for("interest", 3)
    by_gtin = {(e["gtin"], e["customer_id"]) for e in interests}
    assert by_gtin == {(GTIN, None), (GTIN_2, "C0000042")}
    theirs = next(e for e in interests if e["customer_id"])
    assert theirs["session_id"] == presence["session_id"]
    assert theirs["product"]["name"] == "Kettle" and theirs["zone"] == "kitchen"
    anonymous = {e["session_id"] for e in interests if not e["customer_id"]}
    assert presence["session_id"] not in anonymous
    assert wait_until(lambda: credited(edge_config.db_path, "C0000042")) == {mine}
    assert before not in credited(edge_config.db_path, "C0000042") and after


def test_phone_tap_carrying_product_and_token_is_credited(edge, observer, device):
    """A product link and an app token in ONE read (a phone's NFC): the read says who."""
    device("nfc-01").send("nfc", {"uid": PHONE_UID, "ndef": uri_records(
        f"https://id.gs1.org/01/{GTIN}",
        f"https://loyalty.vitrine.example/t/{app_token('C0000077')}")})
    (interest,) = observer.wait_for("interest")
    (presence,) = observer.wait_for("presence")
    assert interest["customer_id"] == "C0000077" and interest["gtin"] == GTIN
    assert interest["session_id"] == presence["session_id"]


def test_two_customers_in_one_read_credit_the_product_to_nobody(edge, observer, device):
    device("nfc-01").send("nfc", {"uid": PHONE_UID, "ndef": uri_records(
        f"https://id.gs1.org/01/{GTIN}",
        f"https://loyalty.vitrine.example/t/{app_token('C0000001')}",
        f"https://app.example/id?t={app_token('C0000002')}")})
    observer.wait_for("presence", 2)
    (interest,) = observer.wait_for("interest")
    assert interest["customer_id"] is None


def test_kiosk_session_opens_on_identification_and_ends_when_they_walk_away(
        edge_config, observer, device):
    cfg = dataclasses.replace(edge_config, kiosk_idle_s=1.0)
    node = EdgeNode(cfg).start()
    try:
        kiosk = device("kiosk-01")
        kiosk.send("qr", {"text": GTIN})  # the previous shopper's, before anyone identified
        kiosk.send("nfc", {"uid": CARD_UID, "ndef": card_ndef("C0005278")})
        kiosk.send("qr", {"text": GTIN_2})  # the identified shopper browses
        observer.wait_for("interest", 2)
        time.sleep(1.5)  # walks away without pressing "I'm done"
        kiosk.send("qr", {"text": GTIN})
        evs = observer.wait_for("interest", 3)
        (presence,) = observer.wait_for("presence")
    finally:
        node.stop()
    assert [e["customer_id"] for e in evs] == [None, "C0005278", None]
    assert evs[1]["session_id"] == presence["session_id"]
    assert len({e["session_id"] for e in evs}) == 3
    rows = query(cfg.db_path, "SELECT customer_id, kind, end_reason FROM sessions "
                              "WHERE device_id = 'kiosk-01' AND customer_id IS NOT NULL")
    assert rows == [("C0005278", "kiosk", "idle")]


def test_erasure_removes_exactly_that_customers_reads(edge, observer, device, edge_config):
    """Two members and anonymous shoppers at the same reader, minutes apart or not."""
    nfc, qr = device("nfc-01"), device("qr-01")
    anon = [nfc.send("nfc", {"uid": TAG})]
    c1 = [nfc.send("nfc", {"uid": PHONE_UID, "ndef": uri_records(
        f"https://id.gs1.org/01/{GTIN}",
        f"https://loyalty.vitrine.example/t/{app_token('C0000001')}")})]
    anon.append(nfc.send("nfc", {"uid": TAG}))
    c2 = [nfc.send("nfc", {"uid": CARD_UID, "ndef": card_ndef("C0000002")})]
    c1_qr = [qr.send("qr", {"text": "]Q1" + app_token("C0000001", gtin=GTIN)})]
    anon.append(nfc.send("nfc", {"uid": TAG}))
    observer.wait_for("interest", 5)
    observer.wait_for("presence", 3)
    wait_until(lambda: len(query(edge_config.db_path, "SELECT 1 FROM outbox")) == 8)
    db = connect(edge_config.db_path)
    try:
        conn = db.conn
        conn.execute("BEGIN IMMEDIATE")
        deleted = erasure.apply(conn, [{"seq": 1, "customer_id": "C0000001"}])
        conn.execute("COMMIT")
        raw = {(r[0], r[1]) for r in conn.execute("SELECT device_id, msg_id FROM events")}
        assert raw == ({("nfc-01", m) for m in anon + c2})
        left = [json.loads(r[0]) for r in conn.execute("SELECT payload FROM outbox")]
        assert {e.get("customer_id") for e in left} == {None, "C0000002"}
        assert len(left) == 4  # 3 anonymous interests and C0000002's presence
        assert conn.execute("SELECT count(*) FROM sessions WHERE customer_id = 'C0000001'"
                            ).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM sessions WHERE customer_id = 'C0000002'"
                            ).fetchone()[0] == 1
        # 2 raw reads, 4 outbox rows (2 presence, 2 interest), 2 one-read sessions.
        assert deleted == 8, (c1, c1_qr)
    finally:
        db.close()


def test_a_busy_simulated_store_credits_no_read_to_the_wrong_shopper(broker, tmp_path):
    """Ground truth at the edge: the fleet knows who made each read (kiosks included)."""
    data = json.loads(DEMO_LAYOUT.read_text()) | {"store_id": broker.store_id}
    (tmp_path / "layout.json").write_text(json.dumps(data))
    layout = load_layout(tmp_path / "layout.json")
    creds = {d.id: f"{d.id}-pw" for d in layout.devices}
    broker.add_many([(d.id, d.kind) for d in layout.devices])
    cfg = load_config(env={}, store_id=broker.store_id, db_path=tmp_path / "edge.db",
                      mqtt_port=broker.port, mqtt_password="edge-pw",
                      loyalty_keys="k1:" + LOYALTY_KEY.hex(),
                      layout_path=tmp_path / "layout.json", panel_port=0)
    node = EdgeNode(cfg).start()
    reads: list[Read] = []
    fleet = Fleet(layout, creds=creds, loyalty_key=LOYALTY_KEY, port=broker.port,
                  store_id=broker.store_id, speed=30, seed=8, identified_share=1.0,
                  arrival_s=4, kiosks=True, on_read=reads.append, on_story=lambda s: None)
    try:
        assert fleet.start(wait=10) == len(fleet.devices)
        stats = fleet.run(15)
        assert fleet.close(flush_timeout=10)
        wait_until(lambda: query(cfg.db_path, "SELECT count(*) FROM events")[0][0]
                   >= len({(r.device_id, r.msg_id) for r in reads}), timeout=20)
    finally:
        fleet.close(flush_timeout=0)
        node.stop()
    truth = {(r.device_id, r.msg_id): r for r in reads}
    origin = {uuid5_str(f"{broker.store_id}/{d}/{m}/{n}"): (d, m)
              for d, m in truth for n in range(1, 5)}
    credited = [json.loads(p) for (p,) in query(
        cfg.db_path, "SELECT payload FROM outbox WHERE kind IN ('interest', 'presence') "
                     "AND json_extract(payload, '$.customer_id') IS NOT NULL")]
    assert credited and stats["kiosk_sessions"] > 0
    wrong = [e for e in credited if truth[origin[e["event_id"]]].customer_id
             != e["customer_id"]]
    assert wrong == []
    kiosk = [e for e in credited if e["type"] == "interest" and e["device_id"].startswith(
        "kiosk-")]
    assert kiosk, "a product checked at a kiosk is its identified shopper's"
    # and every credited read is recorded for erasure
    assert {origin[e["event_id"]] for e in credited} == set(query(
        cfg.db_path, "SELECT device_id, msg_id FROM event_customers"))
