"""NFC taps and QR scans become persisted, enriched interest events."""

from __future__ import annotations

import base64

from contract.ndef_codec import encode_uri
from contract.validation import validate

from .conftest import GTIN, GTIN_2, query, wait_until


def test_nfc_tap_with_digital_link_becomes_interest(edge, observer, device, edge_config):
    nfc = device("nfc-01")
    ndef = base64.b64encode(encode_uri(f"https://id.gs1.org/01/{GTIN}/10/LOT7")).decode()
    nfc.send("nfc", {"uid": "04aabbccddeeff", "ndef": ndef})
    (ev,) = observer.wait_for("interest")
    validate("interest", ev)
    assert ev["gtin"] == GTIN
    assert ev["zone"] == "shoes" and ev["shelf"] == "S1"
    assert ev["product"]["name"] == "Trail shoe" and ev["product"]["price_cents"] == 8999
    assert ev["customer_id"] is None and ev["source"] == "nfc"
    rows = query(edge_config.db_path, "SELECT kind, event_id FROM outbox")
    assert rows == [("interest", ev["event_id"])]
    assert query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 1


def test_registered_tag_without_ndef_maps_uid_to_product(edge, observer, device):
    device("nfc-02").send("nfc", {"uid": "04A1B2C3D4E5F6", "ndef": None})
    (ev,) = observer.wait_for("interest")
    assert ev["gtin"] == GTIN_2 and ev["zone"] == "kitchen" and ev["shelf"] == "K1"


def test_qr_scan_with_aim_prefix_and_path_prefix(edge, observer, device):
    device("qr-01").send("qr", {"text": "]Q1https://shop.example/p/01/04006381333931?17=261231"})
    (ev,) = observer.wait_for("interest")
    assert ev["gtin"] == GTIN_2 and ev["source"] == "qr" and ev["zone"] == "kitchen"


def test_a_digital_link_the_gs1_reference_rejects_never_reaches_the_stream(
        edge, observer, device, edge_config):
    """A short GTIN, a deprecated /gtin/ name or a trailing slash: quarantined, with why."""
    qr = device("qr-01")
    qr.send("qr", {"text": "https://shop.example/p/01/4006381333931"})
    qr.send("qr", {"text": "https://id.gs1.org/gtin/04006381333931"})
    qr.send("qr", {"text": "https://id.gs1.org/01/04006381333931/"})
    qr.send("qr", {"text": "https://id.gs1.org/01/04006381333931?10=L1"})
    rejected = observer.wait_for("rejected", 4)
    assert [r["reason"] for r in rejected] == ["bad_gs1"] * 4
    assert "14 digits" in rejected[0]["detail"] and "short name" in rejected[1]["detail"]
    assert "trailing slash" in rejected[2]["detail"]
    assert "belongs in the path" in rejected[3]["detail"]
    assert not [k for k, _ in observer.events if k == "interest"]


def test_duplicate_message_id_is_recorded_once(edge, observer, device, edge_config):
    qr = device("qr-01")
    for _ in range(3):
        qr.send("qr", {"text": f"https://id.gs1.org/01/{GTIN}"}, msg_id="same-id")
    qr.send("qr", {"text": f"https://id.gs1.org/01/{GTIN}"}, msg_id="other-id")
    observer.wait_for("interest", 2)
    wait_until(lambda: edge.metrics.get("duplicates") == 2)
    assert query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 2
    assert query(edge_config.db_path, "SELECT count(*) FROM outbox")[0][0] == 2
    assert len(observer.wait_for("interest")) == 2


def test_taps_at_one_device_share_an_anonymous_session(edge, observer, device):
    nfc = device("nfc-02")
    nfc.send("nfc", {"uid": "04a1b2c3d4e5f6"})
    nfc.send("nfc", {"uid": "04a1b2c3d4e5f6"})
    device("qr-01").send("qr", {"text": GTIN})
    evs = observer.wait_for("interest", 3)
    by_device = {}
    for e in evs:
        by_device.setdefault(e["device_id"], set()).add(e["session_id"])
    assert len(by_device["nfc-02"]) == 1
    assert by_device["nfc-02"] != by_device["qr-01"]


def test_element_strings_read_are_recorded_on_the_event(edge, observer, device):
    """A device builder sees what the edge read: lot, expiry, serial... on the interest event."""
    qr = device("qr-01")
    qr.send("qr", {"text": "https://id.gs1.org/01/09506000134352/10/LOT42/21/S-1?17=261231"})
    qr.send("qr", {"text": "]Q3(01)09506000134352(15)270101"})
    qr.send("qr", {"text": "https://id.gs1.org/01/09506000134352"})
    with_lot, with_expiry, bare = observer.wait_for("interest", 3)
    assert with_lot["ais"] == {"10": "LOT42", "21": "S-1", "17": "261231"}
    assert with_expiry["ais"] == {"15": "270101"}
    assert "ais" not in bare
    for ev in (with_lot, with_expiry, bare):
        validate("interest", ev)
