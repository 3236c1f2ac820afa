"""Survivorship: which value of a profile field wins when sources disagree.

Every profile update is kept as an observation (field, value, source, time);
the displayed value is chosen when the profile is read, by the rule configured
for the field. Resolving at read time means a changed rule applies to the
whole history at once, and no update is lost to a race between workers.

Rules:
- ``source_priority``: the value from the most trusted source (``sources`` list,
  first wins; unlisted sources rank after listed ones), most recent on a tie;
- ``most_recent``: the latest value, whatever its source;
- ``most_complete``: the longest value (more digits in a phone number, a full
  name over an initial), most recent on a tie.
Empty values never win: a source that does not know a field does not erase it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from central.errors import ConfigError

RULES = ("source_priority", "most_recent", "most_complete")
DEFAULT_RULE: dict[str, Any] = {"rule": "most_recent"}


@dataclass(frozen=True, slots=True)
class Observation:
    field: str
    value: str
    source: str
    observed_at: float


def check_rules(rules: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for a malformed survivorship configuration."""
    for field, rule in rules.items():
        if not isinstance(rule, Mapping) or rule.get("rule") not in RULES:
            raise ConfigError(f"survivorship[{field!r}]: rule must be one of {RULES}")
        if rule["rule"] == "source_priority":
            sources = rule.get("sources")
            if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
                raise ConfigError(f"survivorship[{field!r}]: source_priority needs sources")


def _winner(obs: list[Observation], rule: Mapping[str, Any]) -> Observation:
    kind = rule["rule"]
    if kind == "source_priority":
        sources = list(rule["sources"])
        rank = {s: i for i, s in enumerate(sources)}
        return min(obs, key=lambda o: (rank.get(o.source, len(sources)), -o.observed_at))
    if kind == "most_complete":
        return max(obs, key=lambda o: (len(o.value.strip()), o.observed_at))
    return max(obs, key=lambda o: o.observed_at)


def resolve(observations: Iterable[Observation], rules: Mapping[str, Any]
            ) -> dict[str, dict[str, Any]]:
    """``{field: {"value", "source", "observed_at", "rule"}}`` for every observed field."""
    by_field: dict[str, list[Observation]] = {}
    for o in observations:
        if o.value and o.value.strip():
            by_field.setdefault(o.field, []).append(o)
    out: dict[str, dict[str, Any]] = {}
    for field in sorted(by_field):
        rule = rules.get(field, DEFAULT_RULE)
        win = _winner(by_field[field], rule)
        out[field] = {"value": win.value, "source": win.source, "observed_at": win.observed_at,
                      "rule": rule["rule"]}
    return out
