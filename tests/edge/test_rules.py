"""The rules layer: declarative config, outcomes, and properties that hold for any input."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.rules import (
    Candidate,
    PriceEntry,
    Rule,
    RuleError,
    Rules,
    central_price,
    next_change,
    resolve,
)

SOURCES = ["central", "local_markdown", "store_count", "erp"]
candidates = st.lists(st.builds(Candidate, st.sampled_from(SOURCES),
                                st.integers(min_value=0, max_value=10_000),
                                st.floats(min_value=0, max_value=1e9)), max_size=8)
rules = st.builds(Rule, st.just("f"), st.sampled_from(["lowest", "highest", "freshest",
                                                       "source_priority"]),
                  st.lists(st.sampled_from(SOURCES), min_size=1, max_size=4, unique=True)
                  .map(tuple))


def test_toml_config_and_outcomes(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('''
[[rules]]
field = "price"
prefer = "lowest"
sources = ["central", "local_markdown"]

[[rules]]
field = "stock"
prefer = "freshest"
sources = ["central", "store_count"]
max_age_s = 3600

[[rules]]
field = "name"
prefer = "source_priority"
sources = ["central", "local"]
''')
    r = Rules.from_toml(path)
    price = r.resolve("price", [Candidate("central", 1999, 10), Candidate("local_markdown", 1499,
                                                                          5)])
    assert price == Candidate("local_markdown", 1499, 5)
    # A markdown above the central price does not raise what customers pay.
    assert r.resolve("price", [Candidate("central", 999), Candidate("local_markdown", 1499)]
                     ).source == "central"
    # A fresher store count beats central's figure; one older than max_age_s is ignored.
    now = 10_000.0
    stock = [Candidate("central", 12, now - 600), Candidate("store_count", 3, now - 60)]
    assert r.resolve("stock", stock, now).value == 3
    stale = [Candidate("central", 12, now - 600), Candidate("store_count", 3, now - 7200)]
    assert r.resolve("stock", stale, now).value == 12
    assert r.resolve("name", [Candidate("local", "Shoe!"), Candidate("central", "Shoe")]
                     ).value == "Shoe"
    # A source no rule lists never wins; nothing eligible gives None.
    assert r.resolve("price", [Candidate("erp", 1)]) is None
    assert r.resolve("price", [Candidate("central", None)]) is None


def test_defaults_and_source_priority_flip() -> None:
    r = Rules()
    assert r.rule("price").prefer == "lowest" and r.rule("stock").prefer == "freshest"
    central_first = Rules.from_config([{"field": "price", "prefer": "source_priority",
                                        "sources": ["central", "local_markdown"]}])
    pair = [Candidate("central", 1999), Candidate("local_markdown", 1499)]
    assert central_first.resolve("price", pair).value == 1999
    markdown_first = Rules.from_config({"rules": [{"field": "price", "prefer": "source_priority",
                                                   "sources": ["local_markdown", "central"]}]})
    assert markdown_first.resolve("price", pair).value == 1499


@pytest.mark.parametrize("bad", [
    {"field": "price", "prefer": "cheapest"},
    {"field": "", "prefer": "lowest"},
    {"field": "price", "prefer": "source_priority"},
    {"field": "price", "prefer": "lowest", "sources": "central"},
    {"field": "price", "prefer": "lowest", "max_age_s": -1},
    {"field": "price", "prefer": "lowest", "colour": "red"},
])
def test_bad_rules_are_refused(bad: dict) -> None:
    with pytest.raises(RuleError):
        Rules.from_config([bad])
    with pytest.raises(RuleError):
        Rules.from_config([{"field": "x", "prefer": "lowest"}, {"field": "x", "prefer": "lowest"}])


@given(rules, candidates)
def test_winner_is_an_eligible_candidate_and_optimal(rule: Rule, cands: list[Candidate]) -> None:
    win = resolve(rule, cands)
    pool = [c for c in cands if c.source in rule.sources]
    if not pool:
        assert win is None
        return
    assert win in pool
    if rule.prefer == "lowest":
        assert all(win.value <= c.value for c in pool)
    elif rule.prefer == "highest":
        assert all(win.value >= c.value for c in pool)
    elif rule.prefer == "freshest":
        assert all(win.observed_at >= c.observed_at for c in pool)
    else:
        assert all(rule.rank(win.source) <= rule.rank(c.source) for c in pool)


@given(rules, candidates, st.randoms())
def test_outcome_does_not_depend_on_candidate_order(rule: Rule, cands: list[Candidate],
                                                    rnd) -> None:
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    assert resolve(rule, cands) == resolve(rule, shuffled)


def test_central_price_promo_store_and_schedule() -> None:
    entries = [PriceEntry("*", "regular", 1000),
               PriceEntry("*", "regular", 1100, valid_from=500),           # scheduled rise
               PriceEntry("store-a", "regular", 950),                       # store price
               PriceEntry("*", "promo", 800, valid_from=100, valid_to=200),
               PriceEntry("store-b", "promo", 100)]                         # another store's
    assert central_price(entries, "store-a", 50).price_cents == 950
    assert central_price(entries, "store-a", 150).price_cents == 800
    assert central_price(entries, "store-z", 50).price_cents == 1000
    assert central_price(entries, "store-z", 600).price_cents == 1100
    assert central_price([], "store-a", 0) is None
    assert next_change(entries, 50) == 100 and next_change(entries, 150) == 200
    assert next_change(entries, 600) == math.inf
