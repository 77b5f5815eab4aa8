"""Candidates and RM priors from Feast's online store (feature service ``selector_online_v1``).

Uses the features stage's reader (``caig.features.online.ProductFeatureReader``): one online read for the
product's creative ids, one for those creatives' features. A product's candidates are reused for
``feast_cache_seconds`` so that a hot product does not cost two online reads per impression.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from caig.bandit.types import Arm, InvalidRequest
from caig.errors import UserError


class FeastProvider:
    """``candidates(product_id)`` answered from the run's Feast store (``features.*`` of the profile)."""

    has_priors = True

    def __init__(self, features_config: Any, run_dir: Path, cache_seconds: float = 30.0):
        from caig.features.online import ProductFeatureReader
        from caig.features.store import open_store, store_dir

        self.reader = ProductFeatureReader(open_store(features_config, store_dir(features_config, run_dir)))
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[Arm]]] = {}

    def cached(self, product_id: str) -> list[Arm] | None:
        """The product's candidates if the cache holds them fresh, else None (no online-store read)."""
        hit = self._cache.get(product_id)
        if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
            return hit[1]
        return None

    def candidates(self, product_id: str) -> list[Arm]:
        hit = self._cache.get(product_id)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1]
        try:
            features = self.reader.get(product_id)
        except UserError as err:
            raise InvalidRequest("product_id", f"unknown product '{product_id}' ({err})") from None
        arms = [Arm(c["creative_id"], *_prior(c)) for c in features["creatives"]]
        if not arms:
            raise InvalidRequest("product_id", f"product '{product_id}' has no creatives to select from")
        if self.cache_seconds:
            self._cache[product_id] = (now, arms)
        return arms


def _prior(creative: dict[str, Any]) -> tuple[float, float]:
    """The creative's RM prior, or Beta(1, 1) where the online store has none (not scored yet)."""
    a, b = creative.get("prior_alpha"), creative.get("prior_beta")
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
        return 1.0, 1.0
    return float(a), float(b)
