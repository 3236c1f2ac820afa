"""Shoppers, faults and the whole fleet: reproducible behaviour, schema-valid traffic."""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from contract.loyalty import (
    TokenExpired,
    TokenForged,
    TokenWrongCard,
    verify_token,
)
from contract.ndef_codec import candidate_strings, decode_ndef
from contract.scan import classify
from contract.topics import device_subscription, parse_device_topic
from contract.validation import MAX_PAYLOAD_BYTES, validate
from firmware_sim.__main__ import main
from firmware_sim.faults import PRESETS, FaultConfig, FaultInjector, parse_faults
from firmware_sim.fleet import LOYALTY_URL, SIMULATED_KINDS, Fleet, Read
from firmware_sim.layout import load_layout
from firmware_sim.shoppers import DEVICE_ACTIONS, ShopperPlanner

from .test_device import Subscriber

ROOT = Path(__file__).resolve().parents[2]

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def layout():
    return load_layout()


def _journeys(layout, seed: int, n: int = 30) -> list[list[tuple]]:
    planner = ShopperPlanner(layout, [d.id for d in layout.devices])
    out = []
    for i in range(n):
        rng = random.Random(f"{seed}:{i}")
        shopper = planner.new_shopper(i, rng)
        out.append([(shopper.id, s.action, s.zone, s.device_id, s.tag, s.product, s.label,
                     s.method, round(s.after_s, 6)) for s in planner.journey(shopper, rng)])
    return out


def in_fresh_process(expr: str, hash_seed: str) -> object:
    """Evaluate ``expr`` (this module's helpers in scope) in a new interpreter, with another
    string hash seed: a seed must reproduce a run anywhere, not just within one process."""
    code = ("import json; from firmware_sim.layout import load_layout; "
            "from tests.firmware_sim.test_fleet import _journeys, decisions; "
            "layout = load_layout(); "
            f"print(json.dumps({expr}, default=repr))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    return json.loads(out.stdout)


def test_journeys_are_reproducible_from_the_seed_and_plausible(layout):
    here = json.loads(json.dumps(_journeys(layout, 7), default=repr))
    assert len(here) == 30 and all(len(steps) >= 3 for steps in here)
    assert in_fresh_process("_journeys(layout, 7)", "12345") == here
    assert _journeys(layout, 8) != _journeys(layout, 7)
    journeys = _journeys(layout, 7, n=400)
    devices = {d.id: d for d in layout.devices}
    identified = 0
    for steps in journeys:
        actions = [s[1] for s in steps]
        assert actions[0] == "enter" and actions[-1] == "leave"
        zones = [s[2] for s in steps if s[1] == "zone"]
        assert 2 <= len(set(zones) - {"checkout"}) <= 5
        identified += "identify" in actions
        for _, action, zone, device_id, tag, product, _, method, after in steps:
            assert after >= 0
            if action in DEVICE_ACTIONS:
                assert devices[device_id].zone == zone
            if action == "tap":
                assert devices[device_id].kind == "nfc_reader" and tag.zone == zone
                assert product.gtin == tag.gtin
            if action == "identify":
                assert method in ("card", "app")
    assert 0.12 < identified / len(journeys) < 0.3  # ~25% identify, a few find no device


def test_planner_only_uses_running_devices(layout):
    running = [d.id for d in layout.devices if d.kind == "nfc_reader"]
    planner = ShopperPlanner(layout, running)
    rng = random.Random(1)
    for i in range(50):
        for step in planner.journey(planner.new_shopper(i, rng), rng):
            assert step.device_id is None or step.device_id in running


def test_token_faults_are_what_they_claim(layout):
    now = time.time()
    keys = {"k1": KEY}
    customer = layout.customers[0]
    all_on = FaultInjector(FaultConfig(forged_rate=0.25, expired_rate=0.25, cloned_rate=0.25,
                                       replay_rate=0.25), KEY, seed=3)
    seen: Counter[str | None] = Counter()
    for _ in range(200):
        card = all_on.card_token(customer.id, customer.card_uid, now)
        seen[card.fault] += 1
        expected = {"forged": TokenForged, "expired": TokenExpired, "cloned": TokenWrongCard}
        if card.fault is None:
            claims = verify_token(keys, card.value, now=now, card_uid=card.card_uid)
            assert claims.customer_id == customer.id and claims.kind == "card"
        else:
            with pytest.raises(expected[card.fault]):
                verify_token(keys, card.value, now=now, card_uid=card.card_uid)
    assert set(seen) == {None, "forged", "expired", "cloned"}
    app_tokens = [all_on.app_token(customer.id, now) for _ in range(200)]
    genuine = {t.value for t in app_tokens if t.fault is None}
    replayed = [t for t in app_tokens if t.fault == "replayed"]
    assert replayed and all(t.value in genuine for t in replayed)
    clean = FaultInjector(FaultConfig(), KEY, seed=3)
    token = clean.app_token(customer.id, now)
    assert token.fault is None and verify_token(keys, token.value, now=now).kind == "app"


def decisions(seed: int) -> list[object]:
    inj = FaultInjector(PRESETS["heavy"], KEY, seed=seed)
    return [inj.clock_skew(), inj.next_disconnect_in(), inj.garbage(),
            inj.offline_duration(), inj.app_token("C0000001", 1e9).fault]


def test_fault_decisions_are_reproducible():
    here = decisions(1)
    assert in_fresh_process("[repr(v) for v in decisions(1)]", "777") == [repr(v) for v in here]
    assert decisions(2) != here


def test_parse_faults():
    assert parse_faults("none") == FaultConfig()
    assert parse_faults("default") == PRESETS["default"]
    cfg = parse_faults("default,garbage_rate=0.5, disconnects_per_min=2")
    assert cfg.garbage_rate == 0.5 and cfg.disconnects_per_min == 2.0
    assert cfg.forged_rate == PRESETS["default"].forged_rate
    for bad in ("sometimes", "default,garbage_rate", "default,colour=3", "default,skew_s=1"):
        with pytest.raises(ValueError):
            parse_faults(bad)


def _provision(broker, layout) -> dict[str, str]:
    return broker.add_many([(d.id, d.kind) for d in layout.devices
                            if d.kind in SIMULATED_KINDS])


@pytest.mark.integration
def test_fleet_sends_schema_valid_traffic_from_many_devices(broker, layout):
    creds = _provision(broker, layout)
    edge = Subscriber(broker, device_subscription(broker.store_id))
    faults = FaultConfig(garbage_rate=0.15, duplicate_rate=0.1, forged_rate=0.2,
                         expired_rate=0.2, skewed_fraction=0.3)
    story: list[str] = []
    fleet = Fleet(layout, creds=creds, loyalty_key=KEY, port=broker.port,
                  store_id=broker.store_id, speed=300, rate=40, seed=11, faults=faults,
                  on_story=story.append,
                  device_options={"heartbeat_s": 0.5, "reconnect_min_s": 0.2})
    try:
        assert fleet.start(wait=10) == len(creds)
        stats = fleet.run(4.0)
    finally:
        assert fleet.close(flush_timeout=10)
    assert stats["shoppers"] >= 5 and stats["tap"] >= 10
    assert stats["fault.garbage"] > 0
    assert edge.wait(lambda ms: sum(not m.topic.endswith("/state") for m in ms)
                     >= stats["tap"] + stats["scan"] + stats["identify"], timeout=10)
    edge.close()

    valid: Counter[str] = Counter()
    invalid = 0
    senders = set()
    tag_gtins = {t.uid: t.gtin for t in layout.tags}
    for msg in edge.messages:
        topic = parse_device_topic(msg.topic)
        senders.add(topic.device_id)
        try:
            if len(msg.payload) > MAX_PAYLOAD_BYTES[topic.channel]:
                raise ValueError("oversize")
            payload = validate(topic.channel, json.loads(msg.payload))
        except ValueError:
            invalid += 1
            continue
        valid[topic.channel] += 1
        if topic.channel == "nfc" and payload["uid"] in tag_gtins and payload["ndef"]:
            (item,) = decode_ndef(base64.b64decode(payload["ndef"]))
            assert classify(item.value).gtin == tag_gtins[payload["uid"]]
        elif topic.channel == "nfc" and payload["ndef"]:
            items = decode_ndef(base64.b64decode(payload["ndef"]))
            assert items[-1].value.startswith(LOYALTY_URL)  # a card, or a phone
            if len(items) == 2:  # a phone saving a product: its link, then the app token
                assert classify(items[0].value).kind == "product"
            else:
                assert len(items) == 1
        elif topic.channel == "qr":
            assert classify(payload["text"]).kind in ("product", "loyalty")
    print(dict(stats), dict(valid), invalid, sorted(senders))
    assert len(senders) >= 6
    assert valid["nfc"] >= 10 and valid["state"] >= len(creds) and valid["telemetry"] > 0
    assert invalid >= 1
    assert any(" taps " in line for line in story)
    assert any("fault:" in line for line in story)


@pytest.mark.integration
def test_cli_runs_the_demo(broker, layout, tmp_path: Path, capsys):
    creds_file = tmp_path / "creds.json"
    creds_file.write_text(json.dumps(_provision(broker, layout)))
    rc = main(["--port", str(broker.port), "--creds", str(creds_file), "--store-id",
               broker.store_id, "--speed", "300", "--duration", "2", "--faults", "default",
               "--seed", "5", "--loyalty-key-hex", KEY.hex(), "--heartbeat-s", "1"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert f"15/15 devices connected to 127.0.0.1:{broker.port}" in out
    assert any(" enters" in line for line in out)
    assert out[-1].startswith("summary: ") and "shoppers=" in out[-1]


@pytest.mark.integration
def test_fleet_reports_who_made_each_read_it_published(broker, layout):
    """The ground truth bench.attribution scores against: every read, its shopper, its msg_id."""
    creds = _provision(broker, layout)
    edge = Subscriber(broker, device_subscription(broker.store_id))
    reads: list[Read] = []
    fleet = Fleet(layout, creds=creds, loyalty_key=KEY, port=broker.port,
                  store_id=broker.store_id, speed=300, rate=40, seed=4,
                  identified_share=1.0, arrival_s=5, on_read=reads.append,
                  on_story=lambda line: None)
    try:
        assert fleet.start(wait=10) == len(creds)
        stats = fleet.run(4.0)
    finally:
        assert fleet.close(flush_timeout=10)
    assert reads and len(reads) <= stats["tap"] + stats["scan"] + stats["identify"]
    assert edge.wait(lambda ms: {(parse_device_topic(m.topic).device_id,
                                  json.loads(m.payload).get("msg_id")) for m in ms}
                     >= {(r.device_id, r.msg_id) for r in reads}, timeout=10)
    edge.close()
    assert all(r.customer_id for r in reads)  # everyone was a member in this run
    by_msg = {(parse_device_topic(m.topic).device_id, json.loads(m.payload).get("msg_id")): m
              for m in edge.messages if not m.topic.endswith("/state")}
    saved = [r for r in reads if r.with_app]
    assert saved, "app users save products with the app"
    for r in saved:  # the read itself names the customer, in a signed token
        payload = json.loads(by_msg[(r.device_id, r.msg_id)].payload)
        texts = ([payload["text"]] if "text" in payload else
                 candidate_strings(decode_ndef(base64.b64decode(payload["ndef"]))))
        (token,) = [c.token for c in map(classify, texts) if c.kind == "loyalty"]
        claims = verify_token({"k1": KEY}, token, now=time.time())
        assert claims.customer_id == r.customer_id and claims.kind == "app"
        if r.action == "scan":
            assert claims.gtin == r.gtin
        else:  # a phone tap: the product's link travels beside the token
            assert [c.gtin for c in map(classify, texts) if c.kind == "product"] == [r.gtin]
