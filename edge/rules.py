"""Which value wins when sources disagree: declarative rules, pure functions.

The edge holds several opinions about the same fact: central's price and a
store manager's local markdown, central's stock figure and a fresher shelf
count. Which one a kiosk shows is a business decision, so it lives in config,
not in code::

    [[rules]]
    field = "price"
    prefer = "lowest"                 # the customer always gets the better price
    sources = ["central", "local_markdown"]

    [[rules]]
    field = "stock"
    prefer = "freshest"               # the most recent observation is the truest
    sources = ["central", "store_count"]
    max_age_s = 86400                 # ignore observations older than a day

``prefer`` is one of ``lowest``, ``highest``, ``freshest`` or
``source_priority`` (``sources`` in order, most trusted first). ``sources``
also filters: a candidate from an unlisted source never wins (an empty list
admits every source). Ties are broken by the order of ``sources``, then by
freshness, so the outcome never depends on the order candidates were listed.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFERENCES = ("lowest", "highest", "freshest", "source_priority")


class RuleError(ValueError):
    """A rules configuration that cannot be used."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One source's opinion: ``value`` as seen at ``observed_at`` (epoch seconds)."""

    source: str
    value: Any
    observed_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Rule:
    field: str
    prefer: str
    sources: tuple[str, ...] = ()
    max_age_s: float | None = None

    def rank(self, source: str) -> int:
        """Position of ``source`` in ``sources`` (lower is more trusted)."""
        return self.sources.index(source) if source in self.sources else len(self.sources)


#: Used for a field the configuration does not mention.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("price", "lowest", ("central", "local_markdown")),
    Rule("stock", "freshest", ("store_count", "central")),
)


def parse_rule(raw: Mapping[str, Any]) -> Rule:
    """Validate one ``[[rules]]`` table."""
    unknown = set(raw) - {"field", "prefer", "sources", "max_age_s"}
    if unknown:
        raise RuleError(f"unknown rule keys: {', '.join(sorted(unknown))}")
    field, prefer = raw.get("field"), raw.get("prefer")
    if not isinstance(field, str) or not field:
        raise RuleError("a rule needs a field name")
    if prefer not in PREFERENCES:
        raise RuleError(f"rule {field}: prefer must be one of {', '.join(PREFERENCES)}")
    sources = raw.get("sources", [])
    if not isinstance(sources, list | tuple) or not all(isinstance(s, str) for s in sources):
        raise RuleError(f"rule {field}: sources must be a list of names")
    if prefer == "source_priority" and not sources:
        raise RuleError(f"rule {field}: source_priority needs sources")
    max_age = raw.get("max_age_s")
    if max_age is not None and (not isinstance(max_age, int | float) or max_age <= 0):
        raise RuleError(f"rule {field}: max_age_s must be a positive number")
    return Rule(field, prefer, tuple(sources), None if max_age is None else float(max_age))


class Rules:
    """The rule set of one edge: one rule per field, defaults for the rest."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.by_field = {r.field: r for r in DEFAULT_RULES}
        given = list(rules)
        fields = [r.field for r in given]
        if len(fields) != len(set(fields)):
            raise RuleError("one rule per field")
        self.by_field.update({r.field: r for r in given})

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Rules:
        """From ``{"rules": [...]}`` (a parsed TOML document) or a bare list of rules."""
        raw = config.get("rules", []) if isinstance(config, Mapping) else config
        if not isinstance(raw, list | tuple):
            raise RuleError("rules must be a list of tables")
        return cls(parse_rule(r) for r in raw)

    @classmethod
    def from_toml(cls, path: str | Path) -> Rules:
        try:
            data = tomllib.loads(Path(path).read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RuleError(f"cannot read rules from {path}: {exc}") from None
        return cls.from_config(data)

    def rule(self, field: str) -> Rule:
        return self.by_field.get(field, Rule(field, "freshest"))

    def resolve(self, field: str, candidates: Iterable[Candidate],
                now: float | None = None) -> Candidate | None:
        return resolve(self.rule(field), candidates, now)


def eligible(rule: Rule, candidates: Iterable[Candidate], now: float | None) -> list[Candidate]:
    """Candidates with a value, from an admitted source, not older than ``max_age_s``."""
    out = []
    for c in candidates:
        if c.value is None or (rule.sources and c.source not in rule.sources):
            continue
        if rule.max_age_s is not None and now is not None and now - c.observed_at > rule.max_age_s:
            continue
        out.append(c)
    return out


def resolve(rule: Rule, candidates: Iterable[Candidate], now: float | None = None
            ) -> Candidate | None:
    """The winning candidate under ``rule``, or None when no candidate is eligible."""
    pool = eligible(rule, candidates, now)
    if not pool:
        return None

    def tiebreak(c: Candidate) -> tuple[int, float, str, str]:
        return (rule.rank(c.source), -c.observed_at, c.source, repr(c.value))

    if rule.prefer == "lowest":
        return min(pool, key=lambda c: (c.value, *tiebreak(c)))
    if rule.prefer == "highest":
        return min(pool, key=lambda c: (-c.value, *tiebreak(c)))
    if rule.prefer == "freshest":
        return min(pool, key=lambda c: (-c.observed_at, *tiebreak(c)))
    return min(pool, key=tiebreak)  # source_priority


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """A central price-list line as the edge keeps it (see central/feeds)."""

    store_id: str
    kind: str
    price_cents: int
    valid_from: float = 0.0
    valid_to: float | None = None
    currency: str = "EUR"
    label: str | None = None

    def valid_at(self, now: float) -> bool:
        return self.valid_from <= now and (self.valid_to is None or now < self.valid_to)


def central_price(entries: Iterable[PriceEntry], store_id: str, now: float
                  ) -> PriceEntry | None:
    """Central's price for one product at ``now``: what every channel shows.

    A promotion valid now beats the regular price (the lowest promotion if
    several overlap); a regular price for this store beats the national one
    (``store_id == '*'``); among regular prices of the same scope, the one
    that started last wins, which is how a price change is scheduled.
    """
    valid = [e for e in entries if e.store_id in (store_id, "*") and e.valid_at(now)]
    promos = [e for e in valid if e.kind == "promo"]
    if promos:
        return min(promos, key=lambda e: (e.price_cents, e.store_id == "*", -e.valid_from))
    regular = [e for e in valid if e.kind == "regular"]
    if not regular:
        return None
    return min(regular, key=lambda e: (e.store_id == "*", -e.valid_from, e.price_cents))


def next_change(entries: Iterable[PriceEntry], now: float) -> float:
    """The next instant a validity window opens or closes (``inf`` if none)."""
    times = [t for e in entries for t in (e.valid_from, e.valid_to)
             if t is not None and t > now]
    return min(times, default=math.inf)
