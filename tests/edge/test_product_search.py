"""The kiosk's search index: folding, edit distance, and any text typed is safe."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.product_search import ProductSearch, fold, within


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@pytest.fixture(scope="module")
def index() -> ProductSearch:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE TABLE products (gtin TEXT PRIMARY KEY, name TEXT, brand TEXT, "
                 "category TEXT, price_cents INTEGER, currency TEXT, updated_at REAL)")
    rows = [(f"{i:014d}", name, brand, cat, 100 + i, "EUR", None) for i, (name, brand, cat)
            in enumerate([("Bouilloire électrique", "Brew", "cuisine"),
                          ("Chaussure de trail", "Acme", "chaussures"),
                          ("Café moulu", "Arôme", "épicerie"),
                          ("Kettle", "Brew", "kitchen")])]
    conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return ProductSearch(conn)


def test_fold_removes_accents_and_case():
    assert fold("Électrique ÇA Œuf") == "electrique ca œuf"


@given(st.text(alphabet="abcde", max_size=8), st.text(alphabet="abcde", max_size=8),
       st.integers(0, 3))
def test_within_agrees_with_levenshtein(a, b, limit):
    assert within(a, b, limit) == (_levenshtein(a, b) <= limit)


@pytest.mark.parametrize("typed, first", [
    ("bouilloire", "00000000000000"), ("BOUILL", "00000000000000"),
    ("bouiloire", "00000000000000"),       # typo
    ("chausure trail", "00000000000001"),  # typo in a complete word
    ("electrique", "00000000000000"),      # accent not typed
    ("cafe arome", "00000000000002"),
])
def test_search_tolerates_accents_typos_and_prefixes(index, typed, first):
    assert index.search(typed)[0] == first


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100), st.one_of(st.none(), st.text(max_size=20)),
       st.integers(1, 50))
def test_any_text_typed_is_answered(index, typed, category, limit):
    found = index.search(typed, category=category, limit=limit)
    assert len(found) <= limit and len(set(found)) == len(found)
