"""The request/reply contract: envelopes, op schemas, errors (the edge side is in tests/edge)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.kinds import DEVICE_KINDS
from contract.kiosk_ops import KIOSK_OP_NAMES
from contract.requests import (
    ERROR_CODES,
    REQUEST_OPS,
    RequestError,
    build_reply,
    build_request,
    parse_reply,
    parse_request_envelope,
    readable_request_id,
)
from contract.topics import (
    TopicError,
    is_request_topic,
    parse_request_topic,
    reply_topic,
    request_topic,
)
from contract.validation import schema


def test_ops_are_loaded_with_their_schemas():
    assert set(REQUEST_OPS) == {"ping", "product", "stock", "session_end", *KIOSK_OP_NAMES}
    assert {p.name for p in (Path(__file__).parents[2] / "contract" / "schemas" / "ops")
            .glob("*.json")} == {f"{op}.json" for op in REQUEST_OPS}
    for op in REQUEST_OPS.values():
        assert set(op.kinds) <= set(DEVICE_KINDS)
        assert op.request_schema["type"] == op.reply_schema["type"] == "object"
    assert REQUEST_OPS["session_end"].commits and not REQUEST_OPS["ping"].commits


def test_error_codes_are_the_schema_enum():
    enum = schema("reply")["properties"]["error"]["properties"]["code"]["enum"]
    assert sorted(enum) == sorted(ERROR_CODES)


def test_request_round_trip():
    env = build_request("product", {"gtin": "09506000134352"}, "r-1", 12.5)
    req = parse_request_envelope(json.dumps(env).encode())
    assert (req.request_id, req.op, req.body, req.ts) == ("r-1", "product",
                                                          {"gtin": "09506000134352"}, 12.5)


@pytest.mark.parametrize("op, body, code", [
    ("teleport", {}, "unknown_op"),
    ("product", {}, "bad_request"),
    ("product", {"gtin": "0950600013435"}, "bad_request"),
    ("ping", {"extra": 1}, "bad_request"),
    ("session_end", {"reason": "bored"}, "bad_request"),
])
def test_build_request_refuses_what_the_edge_would(op, body, code):
    with pytest.raises(RequestError) as err:
        build_request(op, body, "r-1")
    assert err.value.code == code


def test_bad_request_ids_are_refused():
    for rid in ("", "has space", "x" * 65, "-leading-dash"):
        with pytest.raises(RequestError):
            build_request("ping", {}, rid)


def test_replies_ok_and_error():
    ok = parse_reply(json.dumps(build_reply("r", "ping", 1.0, body={"a": 1})))
    assert ok.ok and ok.body == {"a": 1} and ok.error is None
    bad = parse_reply(json.dumps(build_reply("r", "ping", 1.0,
                                             error=RequestError("not_found", "nope"))))
    assert not bad.ok and bad.error.code == "not_found" and bad.error.message == "nope"
    with pytest.raises(RequestError):  # ok with an error is not a reply
        parse_reply(json.dumps({"request_id": "r", "op": "p", "ok": True, "ts": 1,
                                "error": {"code": "internal", "message": "x"}}))


def test_an_unknown_error_code_becomes_internal():
    reply = build_reply("r", "ping", 1.0, error=RequestError("weird", "x"))
    assert reply["error"]["code"] == "internal"


def test_readable_request_id():
    assert readable_request_id(b'{"request_id": "abc", "op": 1}') == "abc"
    assert readable_request_id(b'{"request_id": "no spaces allowed"}') is None
    assert readable_request_id(b"nope") is None
    assert readable_request_id(b'["abc"]') is None


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200),
                 st.builds(lambda d: json.dumps(d), st.dictionaries(
                     st.sampled_from(["request_id", "op", "body", "ts", "x"]),
                     st.one_of(st.none(), st.integers(), st.text(max_size=10),
                               st.dictionaries(st.text(max_size=5), st.integers()))))))
def test_parsers_only_raise_request_error(data):
    for parse in (parse_request_envelope, parse_reply):
        try:
            parse(data)
        except RequestError as exc:
            assert exc.code == "bad_request"
    rid = readable_request_id(data)
    assert rid is None or isinstance(rid, str)


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True),
       st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True))
def test_request_topic_round_trip(store: str, device: str) -> None:
    topic = request_topic(store, device)
    assert is_request_topic(topic)
    assert parse_request_topic(topic) == (store, device)
    assert not is_request_topic(reply_topic(store, device))


@given(st.text(max_size=120))
def test_request_topic_parser_only_raises_topic_error(text: str) -> None:
    try:
        store, device = parse_request_topic(text)
    except TopicError:
        return
    assert request_topic(store, device) == text
