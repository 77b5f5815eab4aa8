"""Train/test split by product: every pair of a product lands on the same side, so no product leaks.

Products are ranked by a seeded hash of their id and the first ``round(test_share * n)`` go to test. A
product's side depends only on the seed and its id and rank, not on the order of the input, so the split
is the same on every machine and stable when a few products come or go.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def _rank_key(seed: int, product_id: str) -> str:
    return hashlib.sha256(f"{seed}:{product_id}".encode()).hexdigest()


def held_out_products(product_ids: Iterable[str], test_share: float, seed: int) -> set[str]:
    """The products held out for test: ``round(test_share * n)``, at least one and at most ``n - 1``
    when ``test_share > 0`` and there are at least two products."""
    products = sorted(set(product_ids))
    n = len(products)
    if test_share <= 0 or n < 2:
        return set()
    n_test = min(max(round(test_share * n), 1), n - 1)
    ranked = sorted(products, key=lambda p: _rank_key(seed, p))
    return set(ranked[:n_test])
