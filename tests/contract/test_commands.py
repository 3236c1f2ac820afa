"""Typed commands: built and parsed against command.json, bad ones refused clearly."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.commands import (
    COMMAND_TYPES,
    CommandError,
    CustomerIdentified,
    LabelBitmap,
    ShowProduct,
    parse_command,
)
from contract.validation import schema

GTIN = "09506000134352"


@pytest.mark.parametrize("cmd", [
    ShowProduct(cmd_id="c1", ts=1.5, gtin=GTIN, zone="shoes", name="Trail", brand="Acme",
                price_cents=8999, currency="EUR"),
    CustomerIdentified(cmd_id="c2", ts=2.0, customer_id="C0001234", session_id="s-1",
                       method="card", zone=None),
    LabelBitmap(cmd_id="c3", ts=3.0, gtin=GTIN, width=296, height=128, planes="AA==",
                hash="0" * 64),
])
def test_round_trip_through_the_wire(cmd):
    wire = json.dumps(cmd.to_payload()).encode()
    assert parse_command(wire) == cmd


def test_every_cmd_of_the_schema_has_a_type():
    assert set(COMMAND_TYPES) == set(schema("command")["properties"]["cmd"]["enum"])


def test_public_commands_cannot_carry_a_customer():
    payload = ShowProduct(cmd_id="c1", ts=1.0, gtin=GTIN).to_payload()
    with pytest.raises(CommandError, match="command"):
        parse_command({**payload, "customer_id": "C0001234"})
    with pytest.raises(CommandError):
        parse_command({**LabelBitmap(cmd_id="c", ts=1.0, gtin=GTIN, width=296, height=128,
                                     planes="AA==", hash="0" * 64).to_payload(),
                       "session_id": "s"})


def test_builder_refuses_an_invalid_command():
    with pytest.raises(CommandError, match="gtin"):
        ShowProduct(cmd_id="c1", ts=1.0, gtin="123").to_payload()


@pytest.mark.parametrize("raw, why", [
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"cmd": "self_destruct", "cmd_id": "x", "ts": 1}', "command"),
    (b'{"cmd": "customer_identified", "cmd_id": "x", "ts": 1}', "command"),
    (b"{" + b" " * 20_000 + b"}", "bytes"),
])
def test_bad_commands_say_why(raw, why):
    with pytest.raises(CommandError, match=why):
        parse_command(raw)


def test_unknown_fields_from_a_newer_edge_are_ignored():
    payload = {**ShowProduct(cmd_id="c1", ts=1.0, gtin=GTIN).to_payload(), "theme": "dark"}
    assert parse_command(payload).gtin == GTIN


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300),
                 st.dictionaries(st.sampled_from(["cmd", "cmd_id", "ts", "gtin", "customer_id",
                                                  "session_id", "method", "zone"]),
                                 st.one_of(st.none(), st.integers(), st.text(max_size=20),
                                           st.sampled_from(list(COMMAND_TYPES))))))
def test_parser_never_fails_other_than_with_command_error(data):
    try:
        cmd = parse_command(data)
    except CommandError:
        return
    assert parse_command(cmd.to_payload()) == cmd
