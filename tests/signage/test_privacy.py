"""Public screens and labels never get personal data: refused by the schema, kept out by the ACL."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.commands import CommandError, parse_command
from contract.topics import command_topic, event_topic

GTIN = "04063511002891"


@pytest.mark.parametrize("cmd", [
    {"cmd": "show_product", "gtin": GTIN},
    {"cmd": "set_playlist", "version": "v1", "playlists": {"playlists": []}},
    {"cmd": "label_bitmap", "gtin": GTIN, "width": 296, "height": 128, "planes": "eJw=",
     "hash": "0" * 64},
])
@pytest.mark.parametrize("personal", ["customer_id", "session_id"])
def test_commands_to_public_devices_refuse_customer_fields(cmd, personal):
    base = {**cmd, "cmd_id": "c1", "ts": 1.0}
    parse_command(base)  # valid without the personal field
    with pytest.raises(CommandError):
        parse_command({**base, personal: "C0005278"})


def _client(broker, name: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.username_pw_set(name, f"{name}-pw")
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    assert connected.wait(5)
    return c


@pytest.mark.integration
@pytest.mark.parametrize("kind, device", [("signage", "sign-01"), ("shelf_label", "esl-01")])
def test_public_devices_cannot_read_events_or_other_devices_commands(broker, kind, device):
    broker.add_many([(device, kind), ("sign-02", "signage")])
    got: list[str] = []
    spy = _client(broker, device)
    spy.on_message = lambda c, u, m: got.append(m.topic)
    subscribed = threading.Event()
    spy.on_subscribe = lambda *a: subscribed.set()
    spy.subscribe([(f"vitrine/v1/{broker.store_id}/events/#", 1),
                   (command_topic(broker.store_id, "signage", "sign-02"), 1)])
    assert subscribed.wait(5)
    seen: list[str] = []  # control: the staff observer does get the event
    observer = _client(broker, "observer")
    observer.on_message = lambda c, u, m: seen.append(m.topic)
    observer_ready = threading.Event()
    observer.on_subscribe = lambda *a: observer_ready.set()
    observer.subscribe(f"vitrine/v1/{broker.store_id}/events/#", 1)
    assert observer_ready.wait(5)
    edge = _client(broker, "edge")
    event = [{"type": "interest", "customer_id": "C0005278", "gtin": GTIN}]
    edge.publish(event_topic(broker.store_id, "interest"), json.dumps(event),
                 qos=1).wait_for_publish(5)
    edge.publish(command_topic(broker.store_id, "signage", "sign-02"),
                 json.dumps({"cmd": "show_product", "cmd_id": "x", "ts": 1.0, "gtin": GTIN}),
                 qos=1).wait_for_publish(5)
    time.sleep(1.0)
    for c in (spy, edge, observer):
        c.loop_stop()
        c.disconnect()
    assert seen == [event_topic(broker.store_id, "interest")]
    assert got == []
