"""Search as you type over the store's catalogue: full text, accents and typos tolerated.

The index is an SQLite FTS5 table in a private in-memory database, built from
the edge's ``products`` table (the one price source) and rebuilt when that
table changes. Keeping it out of the edge database means the writer never pays
for it and no migration or trigger is needed; 50,000 products index in well
under a second.

* **Accents**: the query and the index are folded the same way (``unicode61
  remove_diacritics 2``, and :func:`fold` for the query), so ``cafe`` finds
  ``Café`` and ``bouilloire`` finds ``Bouilloire``.
* **As you type**: the last word is a prefix (``kett`` finds ``Kettle``).
* **Typos**: a word that matches nothing is replaced by the index's words
  within one edit (two for words of seven letters or more), read from the FTS5
  vocabulary, so ``ketle`` and ``chausure`` still find something.
"""

from __future__ import annotations

import bisect
import re
import sqlite3
import threading
import time
import unicodedata
from typing import Any

_WORD = re.compile(r"[0-9a-z]+")


def fold(text: str) -> str:
    """Lower case without diacritics: what the tokenizer does to the indexed text."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def within(a: str, b: str, limit: int) -> bool:
    """Is the edit distance (Levenshtein) between ``a`` and ``b`` at most ``limit``?"""
    if abs(len(a) - len(b)) > limit:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return False
        prev = cur
    return prev[-1] <= limit


class ProductSearch:
    """The search index of one edge; thread-safe (one lock around its private database)."""

    def __init__(self, source: sqlite3.Connection, *, check_every_s: float = 2.0) -> None:
        self.source = source
        self.check_every_s = check_every_s
        self._lock = threading.Lock()
        self._idx = sqlite3.connect(":memory:", check_same_thread=False)
        self._idx.execute("CREATE VIRTUAL TABLE fts USING fts5(gtin UNINDEXED, name, brand, "
                          "category, tokenize = 'unicode61 remove_diacritics 2')")
        self._idx.execute("CREATE VIRTUAL TABLE vocab USING fts5vocab(fts, 'row')")
        self._vocab: list[str] = []
        self._words: frozenset[str] = frozenset()
        self._signature: tuple[Any, ...] | None = None
        self._checked_at = 0.0
        self.rebuilds = 0
        self.refresh(force=True)

    # -- keeping the index fresh -------------------------------------------------
    def _source_signature(self) -> tuple[Any, ...]:
        return tuple(self.source.execute(
            "SELECT count(*), max(updated_at), total(price_cents), max(rowid) FROM products"
        ).fetchone())

    def refresh(self, force: bool = False) -> bool:
        """Rebuild if ``products`` changed (checked at most every ``check_every_s``)."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.check_every_s:
            return False
        with self._lock:
            self._checked_at = now
            signature = self._source_signature()
            if not force and signature == self._signature:
                return False
            rows = self.source.execute(
                "SELECT gtin, name, coalesce(brand, ''), coalesce(category, '') FROM products "
                "WHERE price_cents IS NOT NULL").fetchall()
            self._idx.execute("DELETE FROM fts")
            self._idx.executemany("INSERT INTO fts VALUES (?, ?, ?, ?)", rows)
            self._vocab = sorted(r[0] for r in self._idx.execute("SELECT term FROM vocab"))
            self._words = frozenset(self._vocab)
            self._signature = signature
            self.rebuilds += 1
            return True

    # -- searching -----------------------------------------------------------------
    def _has_prefix(self, word: str) -> bool:
        i = bisect.bisect_left(self._vocab, word)
        return i < len(self._vocab) and self._vocab[i].startswith(word)

    def _near(self, word: str, prefix: bool) -> list[str]:
        """Index words one (or two, for long words) edits from ``word``; same first letter."""
        limit = 2 if len(word) >= 7 else 1
        lo = bisect.bisect_left(self._vocab, word[0])
        hi = bisect.bisect_left(self._vocab, chr(ord(word[0]) + 1))
        out = []
        for term in self._vocab[lo:hi]:
            if prefix:  # the shopper may be mid-word: compare with the term's beginnings
                lengths = range(max(1, len(word) - limit), len(word) + limit + 1)
                hit = any(within(word, term[:n], limit) for n in lengths if n <= len(term))
            else:
                hit = within(word, term, limit)
            if hit:
                out.append(term)
                if len(out) >= 20:
                    break
        return out

    def match_expression(self, q: str) -> str | None:
        """The FTS5 MATCH expression for what the shopper typed, or None (nothing to match)."""
        words = _WORD.findall(fold(q))
        if not words:
            return None
        typed_on = not q[-1:].isspace()  # the last word is still being typed
        parts = []
        for n, word in enumerate(words):
            prefix = typed_on and n == len(words) - 1
            if (prefix and self._has_prefix(word)) or word in self._words:
                parts.append(f'"{word}"*' if prefix else f'"{word}"')
                continue
            near = self._near(word, prefix) if len(word) >= 3 else []
            if not near:
                return None  # a word that matches nothing, even with a typo: no result
            parts.append("(" + " OR ".join(f'"{t}"' for t in near) + ")")
        return " AND ".join(parts)

    def search(self, q: str, *, category: str | None = None, limit: int = 20
               ) -> list[str]:
        """GTINs best first: names weigh more than brands, brands more than categories."""
        self.refresh()
        with self._lock:
            expr = self.match_expression(q) if q.strip() else None
            if expr is None and q.strip():
                return []
            if expr is None:
                sql = "SELECT gtin FROM fts WHERE (? IS NULL OR category = ?) ORDER BY name LIMIT ?"
                return [r[0] for r in self._idx.execute(sql, (category, category, limit))]
            sql = ("SELECT gtin FROM fts WHERE fts MATCH ? AND (? IS NULL OR category = ?) "
                   "ORDER BY bm25(fts, 0, 10.0, 3.0, 1.0) LIMIT ?")
            return [r[0] for r in self._idx.execute(sql, (expr, category, category, limit))]

    def categories(self) -> list[tuple[str, int]]:
        self.refresh()
        with self._lock:
            return [(r[0], r[1]) for r in self._idx.execute(
                "SELECT category, count(*) FROM fts WHERE category != '' "
                "GROUP BY category ORDER BY category")]
