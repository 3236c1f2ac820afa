"""The documentation keeps up with the code: these tests fail when something is undocumented.

* ``docs/protocol.md`` names every topic channel, has a section (with a field table) per
  message schema, a valid example per schema, the payload limit of every channel and every
  quarantine reason the edge can produce;
* ``broker_config/mosquitto.conf`` is exactly what ``vitrine broker config`` renders, and
  ``broker_config/README.md`` explains every setting it contains;
* ``broker_config/acl.example`` is what ``render_acl`` produces;
* ``README.md`` mentions every ``vitrine`` subcommand.

Reasons and subcommands are read from the source, so adding one without documenting it
fails here.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from contract import loyalty, topics
from contract.validation import MAX_PAYLOAD_BYTES, SCHEMA_NAMES, SchemaError, validate
from vitrine import broker, cli, provisioning

REPO = Path(__file__).resolve().parents[1]
PROTOCOL = REPO / "docs" / "protocol.md"
BROKER_README = REPO / "broker_config" / "README.md"
BROKER_CONF = REPO / "broker_config" / "mosquitto.conf"
ACL_EXAMPLE = REPO / "broker_config" / "acl.example"
ROOT_README = REPO / "README.md"
SCHEMA_DIR = REPO / "contract" / "schemas"

#: The principals of broker_config/acl.example (also shown in broker_config/README.md).
ACL_EXAMPLE_STORE = "store-001"
ACL_EXAMPLE_PRINCIPALS = [
    ("edge", "edge"), ("panel-01", "observer"), ("nfc-shoes-01", "nfc_reader"),
    ("qr-checkout-01", "qr_scanner"), ("kiosk-entrance-01", "kiosk"),
    ("sign-entrance-01", "signage"), ("label-shoes-01", "shelf_label"),
]

_EXAMPLE = re.compile(r"<!--\s*(schema:\s*([\w-]+)|layout)\s*-->\s*\n\s*```json\n(.*?)\n```",
                      re.DOTALL)
_MARKER = re.compile(r"<!--\s*(?:schema:|layout)")
_JSON_BLOCK = re.compile(r"^```json\n(.*?)\n```", re.DOTALL | re.MULTILINE)


def _read(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO)} does not exist")
    return path.read_text("utf-8")


@pytest.fixture(scope="module")
def protocol() -> str:
    return _read(PROTOCOL)


@pytest.fixture(scope="module")
def broker_readme() -> str:
    return _read(BROKER_README)


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading line, body up to the next heading of the same or a higher level)."""
    headings = [(m.start(), len(m.group(1)), m.group(0))
                for m in re.finditer(r"^(#{1,6}) .*$", text, re.MULTILINE)]
    out = []
    for i, (start, level, line) in enumerate(headings):
        end = next((s for s, lvl, _ in headings[i + 1:] if lvl <= level), len(text))
        out.append((line, text[start:end]))
    return out


def _missing(names, text: str, fmt: str = "`{}`") -> list[str]:
    return sorted(n for n in names if fmt.format(n) not in text)


# --------------------------------------------------------------------------- topics


def test_every_device_channel_is_documented(protocol):
    assert _missing(topics.DEVICE_CHANNELS, protocol, "`devices/{{device_id}}/{}`") == []


def test_every_edge_channel_is_documented(protocol):
    assert _missing(topics.EDGE_CHANNELS, protocol, "`events/{}`") == []


def test_every_command_family_is_documented(protocol):
    assert _missing(topics.COMMAND_FAMILIES, protocol, "`{}/{{device_id}}/cmd`") == []


def test_edge_state_and_prefix_are_documented(protocol):
    assert "`edge/state`" in protocol
    assert f"`{topics.PREFIX}`" in protocol


# --------------------------------------------------------------------------- schemas


def _schema_files() -> list[str]:
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.json"))


def test_schema_names_match_schema_files():
    assert sorted(SCHEMA_NAMES) == _schema_files()


@pytest.mark.parametrize("name", _schema_files())
def test_every_schema_has_a_section_with_its_fields(protocol, name):
    sections = [body for heading, body in _sections(protocol) if f"`{name}.json`" in heading]
    assert sections, f"no heading in docs/protocol.md mentions `{name}.json`"
    body = sections[0]
    fields = json.loads((SCHEMA_DIR / f"{name}.json").read_text("utf-8"))["properties"]
    undocumented = [f for f in fields if f"| `{f}` |" not in body]
    assert undocumented == [], f"{name}.json fields missing from its table: {undocumented}"


def test_example_payloads_validate(protocol):
    examples = _EXAMPLE.findall(protocol)
    assert len(examples) == len(_MARKER.findall(protocol)), \
        "a <!-- schema: ... --> or <!-- layout --> marker is not followed by a ```json block"
    covered = set()
    for _, name, text in examples:
        if not name:
            continue
        assert name in SCHEMA_NAMES, f"example marked with unknown schema {name!r}"
        try:
            validate(name, json.loads(text))
        except (ValueError, SchemaError) as exc:
            pytest.fail(f"example for {name} is invalid: {exc}\n{text}")
        covered.add(name)
    assert sorted(set(SCHEMA_NAMES) - covered) == [], "schemas without a validated example"


def test_every_json_block_is_json(protocol):
    for text in _JSON_BLOCK.findall(protocol):
        try:
            json.loads(text)
        except ValueError as exc:
            pytest.fail(f"```json block is not JSON ({exc}):\n{text}")


def test_layout_example_is_a_valid_layout(protocol):
    from contract.layout import parse_layout

    layouts = [text for marker, _, text in _EXAMPLE.findall(protocol) if marker == "layout"]
    assert layouts, "docs/protocol.md has no <!-- layout --> example"
    for text in layouts:
        parse_layout(json.loads(text))


def test_every_payload_limit_is_documented(protocol):
    table_lines = [line for line in protocol.splitlines() if line.startswith("|")]
    for channel, limit in MAX_PAYLOAD_BYTES.items():
        assert any(f"`{channel}`" in line and re.search(rf"\b{limit}\b", line)
                   for line in table_lines), f"no table row gives {limit} bytes for {channel}"


# --------------------------------------------------------------------------- quarantine


def _edge_reasons() -> set[str]:
    """Every quarantine reason literal in edge/*.py."""
    patterns = (
        r'\bRejected\(\s*"([^"]+)"',
        r'\b_quarantine\(\s*[\w.]+\s*,\s*"([^"]+)"',
        r'\bframe_error\s*=\s*\(\s*"([^"]+)"',
    )
    reasons: set[str] = set()
    for path in sorted((REPO / "edge").glob("*.py")):
        source = path.read_text("utf-8")
        for pattern in patterns:
            reasons.update(re.findall(pattern, source))
    return reasons


def _token_reasons() -> set[str]:
    """Every ``TokenError.reason`` of contract.loyalty: class attributes and reason=... kwargs."""
    reasons = {obj.reason for obj in vars(loyalty).values()
               if isinstance(obj, type) and issubclass(obj, loyalty.TokenError)}
    reasons.update(re.findall(r'\breason\s*=\s*"([^"]+)"', inspect.getsource(loyalty)))
    return reasons


def test_reason_parsers_find_something():
    # Guards the regexes above: if they stop matching, the tests below prove nothing.
    assert {"oversize", "not_json", "schema", "internal_error", "bad_frame"} <= _edge_reasons()
    assert {"bad_signature", "unknown_key", "replayed"} <= _token_reasons()
    assert 'f"token_{reason}"' in (REPO / "edge" / "pipeline.py").read_text("utf-8")


def test_every_quarantine_reason_is_documented(protocol):
    assert _missing(_edge_reasons(), protocol) == []


def test_every_token_reason_is_documented(protocol):
    reasons = _token_reasons()
    assert _missing({f"token_{r}" for r in reasons}, protocol) == []  # quarantine table
    assert _missing(reasons, protocol) == []  # security event reasons


# --------------------------------------------------------------------------- README / CLI


def _cli_commands() -> list[str]:
    commands = re.findall(r'\bcommand == "([\w-]+)"', inspect.getsource(cli.main))
    assert commands, "could not find the subcommands in vitrine.cli.main"
    return commands


def test_every_cli_subcommand_is_in_the_readme():
    # README.md is written by the project lead; until it exists this test fails on purpose.
    readme = _read(ROOT_README)
    missing = [c for c in _cli_commands() if not re.search(rf"\bvitrine\s+{c}\b", readme)]
    assert missing == [], f"README.md does not mention: {', '.join(missing)} (as `vitrine <cmd>`)"


def test_every_device_action_and_role_is_in_the_broker_readme(broker_readme):
    actions = re.findall(r'\.add_parser\(\s*"(\w+)"', inspect.getsource(cli._device))
    assert actions
    lines = [line for line in broker_readme.splitlines() if "vitrine device" in line]
    for action in actions:
        assert any(re.search(rf"\b{action}\b", line) for line in lines), \
            f"`vitrine device ... {action}` is not shown in broker_config/README.md"
    assert _missing(provisioning.ROLES, broker_readme) == []


# --------------------------------------------------------------------------- broker config


def test_committed_mosquitto_conf_is_the_rendered_production_config():
    rendered = broker.render_config(cli.production_settings())
    assert _read(BROKER_CONF) == rendered, \
        "broker_config/mosquitto.conf drifted: regenerate it with `vitrine broker config`"


def _directives() -> set[str]:
    """Setting names render_config can emit: from a full rendering and from its source."""
    rendered = broker.render_config(cli.production_settings())
    names = {line.split()[0] for line in rendered.splitlines()
             if line.strip() and not line.startswith("#")}
    names.update(re.findall(r'f?"([a-z_]+) ', inspect.getsource(broker.render_config)))
    return names


def test_every_broker_setting_is_explained(broker_readme):
    names = _directives()
    assert {"max_queued_messages", "set_tcp_nodelay", "user", "tls_version"} <= names
    assert _missing(names, broker_readme) == []


@pytest.mark.parametrize("name", ["max_inflight_messages", "max_queued_messages",
                                  "max_queued_bytes", "max_packet_size", "autosave_interval",
                                  "persistent_client_expiration"])
def test_broker_limits_are_given_with_their_values(broker_readme, name):
    value = str(getattr(cli.production_settings(), name))
    assert any(f"`{name}`" in line and value in line for line in broker_readme.splitlines()), \
        f"broker_config/README.md has no line giving `{name}` = {value}"


def test_acl_example_is_rendered_by_the_provisioner():
    principals = [provisioning.Principal(name, role, "", 0.0)
                  for name, role in ACL_EXAMPLE_PRINCIPALS]
    assert _read(ACL_EXAMPLE) == provisioning.render_acl(ACL_EXAMPLE_STORE, principals), \
        "broker_config/acl.example drifted from vitrine.provisioning.render_acl"


def test_every_device_kind_is_documented(protocol):
    from contract.kinds import DEVICE_KINDS
    from contract.requests import REQUEST_OPS

    state_row = next(line for line in protocol.splitlines() if line.startswith("| `kind` |"))
    assert [k for k in DEVICE_KINDS if f'"{k}"' not in state_row] == []
    assert _missing(REQUEST_OPS, protocol, "| `{}` |") == [], "request ops without a row"
