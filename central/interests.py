"""Interest scores: products and categories a customer engaged with, decayed over time.

Each interest event adds ``0.5 ** (age / half_life)`` to its product and its
category, so a tap yesterday outweighs ten taps last year and a salesperson
sees what the customer wants now. Scores are computed when the profile is
read, from the events in the scoring window: there is no counter to keep
consistent across workers, and a changed half-life applies immediately.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DAY_S = 86_400.0


def decay(age_s: float, half_life_days: float) -> float:
    """Weight of an event ``age_s`` old; 1.0 now, 0.5 after one half-life."""
    return 0.5 ** (max(age_s, 0.0) / (half_life_days * DAY_S))


def score(events: Iterable[Any], now: float, half_life_days: float, top: int = 20
          ) -> dict[str, list[dict[str, Any]]]:
    """Top ``top`` products (by gtin) and categories, highest score first."""
    products: dict[str, float] = {}
    categories: dict[str, float] = {}
    for ev in events:
        if ev["kind"] != "interest":
            continue
        weight = decay(now - ev["occurred_at"], half_life_days)
        if ev["gtin"]:
            products[ev["gtin"]] = products.get(ev["gtin"], 0.0) + weight
        if ev["category"]:
            categories[ev["category"]] = categories.get(ev["category"], 0.0) + weight

    def ranked(scores: dict[str, float], key: str) -> list[dict[str, Any]]:
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return [{key: k, "score": round(v, 4)} for k, v in best]

    return {"products": ranked(products, "gtin"), "categories": ranked(categories, "category")}
