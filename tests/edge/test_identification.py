"""Loyalty cards and app QR codes identify shoppers; bad tokens never do."""

from __future__ import annotations

import base64
import time

from contract.loyalty import issue_token
from contract.ndef_codec import encode_uri
from contract.validation import validate

from .conftest import GTIN, LOYALTY_KEY, query, wait_until

CARD_UID = "04c0ffee123456"


def card_ndef(token: str) -> str:
    return base64.b64encode(encode_uri(f"https://loyalty.vitrine.example/t/{token}")).decode()


def test_card_tap_at_a_shelf_reader_identifies_that_read_only(edge, observer, device):
    """A shelf reader is shared: the taps around a card tap are other shoppers' as often
    as not, so they stay anonymous and never share the identified session."""
    token = issue_token(LOYALTY_KEY, "C0001234", kind="card", now=time.time(),
                        ttl_s=365 * 86400, card_uid=CARD_UID)
    nfc = device("nfc-02")
    nfc.send("nfc", {"uid": "04a1b2c3d4e5f6"})  # anonymous tap first
    nfc.send("nfc", {"uid": CARD_UID, "ndef": card_ndef(token)})
    nfc.send("nfc", {"uid": "04a1b2c3d4e5f6"})
    (presence,) = observer.wait_for("presence")
    validate("presence", presence)
    assert presence["customer_id"] == "C0001234" and presence["method"] == "card"
    assert presence["zone"] == "kitchen"
    first, second = observer.wait_for("interest", 2)
    assert first["customer_id"] is None and second["customer_id"] is None
    # Central links a session to whoever identified in it: no anonymous read may share it.
    assert first["session_id"] == second["session_id"] != presence["session_id"]


def test_app_qr_is_single_use(edge, observer, device, edge_config):
    token = issue_token(LOYALTY_KEY, "C0000042", kind="app", now=time.time(), ttl_s=120)
    qr = device("qr-01")
    qr.send("qr", {"text": "]Q1" + token})
    qr.send("qr", {"text": "]Q1" + token})  # a screenshot shown again: replay
    (presence,) = observer.wait_for("presence")
    assert presence["method"] == "app" and presence["customer_id"] == "C0000042"
    (sec,) = observer.wait_for("security")
    validate("security", sec)
    assert sec["reason"] == "replayed"
    reasons = query(edge_config.db_path, "SELECT reason FROM security_events")
    assert reasons == [("replayed",)]


def test_forged_expired_and_cloned_tokens_never_identify(edge, observer, device, edge_config):
    now = time.time()
    forged = issue_token(b"not-the-retailer-key-000000000000", "C1", kind="app", now=now,
                         ttl_s=120)
    expired = issue_token(LOYALTY_KEY, "C2", kind="app", now=now - 3600, ttl_s=120)
    card = issue_token(LOYALTY_KEY, "C3", kind="card", now=now, ttl_s=86400, card_uid=CARD_UID)
    qr = device("qr-01")
    qr.send("qr", {"text": forged})
    qr.send("qr", {"text": expired})
    device("nfc-01").send("nfc", {"uid": "04deadbeef0001", "ndef": card_ndef(card)})  # cloned
    qr.send("qr", {"text": f"https://id.gs1.org/01/{GTIN}"})
    observer.wait_for("security", 3)
    (interest,) = observer.wait_for("interest")
    assert interest["customer_id"] is None
    assert not [e for k, e in observer.events if k == "presence"]
    rows = wait_until(lambda: query(edge_config.db_path,
                                    "SELECT reason FROM quarantine ORDER BY id"))
    assert sorted(r[0] for r in rows) == sorted(
        ["token_bad_signature", "token_expired", "token_wrong_card"])
    assert edge.metrics.get("presence") == 0
