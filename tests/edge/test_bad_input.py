"""Hostile or broken input is quarantined with its reason; the edge keeps going."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from contract.topics import device_topic
from contract.validation import validate

from .conftest import GTIN, query, wait_until

CASES = [
    ("nfc-01", "nfc", b"\x00\xffnot json at all", "not_json"),
    ("nfc-01", "nfc", json.dumps({"msg_id": "x1", "ts": "yesterday", "uid": "04aa"}).encode(),
     "schema"),
    ("nfc-01", "nfc", json.dumps({"msg_id": "x2", "ts": 1.0, "uid": "zz"}).encode(), "schema"),
    ("nfc-01", "nfc", b"{" + b" " * 20_000 + b"}", "oversize"),
    ("nfc-01", "nfc", json.dumps({"msg_id": "x3", "ts": 1.0, "uid": "04aabbcc",
                                  "ndef": base64.b64encode(b"\xd1\x01garbage").decode()}).encode(),
     "bad_ndef"),
    ("qr-01", "qr", json.dumps({"msg_id": "x4", "ts": 1.0,
                                "text": "https://id.gs1.org/01/09506000134353"}).encode(),
     "bad_gs1"),
    ("nfc-99", "nfc", json.dumps({"msg_id": "x5", "ts": 1.0, "uid": "04aabbcc"}).encode(),
     "unknown_device"),
]


@pytest.mark.parametrize(("device_id", "channel", "payload", "reason"), CASES,
                         ids=[c[3] for c in CASES])
def test_bad_message_is_quarantined(edge, observer, device, edge_config, device_id, channel,
                                    payload, reason):
    dev = device(device_id)
    dev.send(channel, payload)
    # A good message after the bad one still goes through: the subscriber did not stop.
    device("qr-01").send("qr", {"text": f"https://id.gs1.org/01/{GTIN}"})
    observer.wait_for("interest")
    rows = wait_until(lambda: query(edge_config.db_path,
                                    "SELECT reason, device_id, size, payload FROM quarantine"))
    assert [(r[0], r[1]) for r in rows] == [(reason, device_id)]
    # Kept for inspection: whole, or (oversize) its first 4 KiB and the hash of the whole.
    assert rows[0][2] == len(payload) and bytes(rows[0][3]) == payload[:4096]
    if len(payload) > 4096:
        (digest,) = query(edge_config.db_path, "SELECT sha256 FROM quarantine")[0]
        assert digest == hashlib.sha256(payload).hexdigest()
    (rejected,) = observer.wait_for("rejected")
    validate("rejected", rejected)
    assert rejected["reason"] == reason
    assert edge.metrics.get(f"quarantined.{reason}") == 1
    assert query(edge_config.db_path, "SELECT count(*) FROM events")[0][0] == 1


def test_garbage_topic_suffix_is_refused_by_broker_acl_not_seen_by_edge(edge, device, broker,
                                                                      edge_config):
    dev = device("nfc-01")
    info = dev.client.publish(device_topic(broker.store_id, "nfc-02", "nfc"), b"{}", qos=1)
    info.wait_for_publish(5)
    dev.send("telemetry", {"uptime_s": 3})
    wait_until(lambda: edge.metrics.get("accepted") == 1)
    assert query(edge_config.db_path, "SELECT count(*) FROM quarantine")[0][0] == 0
