"""The commented example edge.toml loads, and lists every setting the edge has."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

from edge.config import EdgeConfig, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "edge.toml"
SECRETS = ("mqtt_password", "loyalty_keys", "store_token", "panel_secret_key")
#: Off by default (None / empty): the example shows what a value looks like instead.
EXAMPLE_VALUES = ("layout_path", "central_url", "assets_dir", "panel_tls_cert",
                  "panel_tls_key", "panel_broker_dir")


def test_example_loads_as_the_edge_would():
    cfg = load_config(EXAMPLE, env={})
    assert cfg.store_id == "store-001" and str(cfg.db_path) == "/var/lib/vitrine/edge.db"


def test_example_lists_every_setting_with_its_default():
    text = EXAMPLE.read_text("utf-8")
    listed = dict(re.findall(r"^#? ?(\w+) = (\S+)", text, re.MULTILINE))
    names = [f.name for f in fields(EdgeConfig)]
    assert sorted(set(names) - set(listed)) == [], "settings missing from the example"
    assert sorted(set(listed) - set(names)) == [], "the example lists unknown settings"
    # A commented line shows the default: uncommented, it must parse to the same value.
    defaults = EdgeConfig()
    for name, raw in listed.items():
        value = tomllib.loads(f"v = {raw}")["v"]
        if f"\n{name} = " in text or name in EXAMPLE_VALUES:  # set on purpose
            continue
        assert value == getattr(defaults, name), f"{name}: example says {raw}"


def test_no_secret_is_set_in_the_example():
    raw = tomllib.loads(EXAMPLE.read_text("utf-8"))["edge"]
    assert not set(SECRETS) & set(raw)
