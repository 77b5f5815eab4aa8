"""Thompson sampling on Beta posteriors, and the probability that it picks each arm (its propensity).

The posterior of a creative's click rate is ``Beta(prior_alpha + clicks, prior_beta + impressions - clicks)``;
TS draws one click rate per creative and serves the creative with the highest draw. The probability of that
choice (needed by off-policy evaluation) has no closed form for more than two arms, so it is estimated by
Monte Carlo, and cached per posterior state: it only changes when feedback arrives.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np


def posterior(
    prior_alpha: np.ndarray, prior_beta: np.ndarray, impressions: np.ndarray, clicks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Beta posterior parameters per arm from its prior and its counts (any matching shapes)."""
    return prior_alpha + clicks, prior_beta + (impressions - clicks)


def thompson_choice(alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator) -> np.ndarray | int:
    """Index of the arm with the highest Beta draw, over the last axis (one choice per leading index)."""
    draws = rng.beta(alpha, beta)
    choice = draws.argmax(axis=-1)
    return int(choice) if np.ndim(choice) == 0 else choice


def thompson_choice_one(alpha: Sequence[float], beta: Sequence[float], rnd: random.Random) -> int:
    """``thompson_choice`` for one request with a handful of arms, in plain Python (no numpy call overhead:
    this runs once per impression in the server)."""
    draws = [rnd.betavariate(a, b) for a, b in zip(alpha, beta, strict=True)]
    return max(range(len(draws)), key=draws.__getitem__)


def choice_probabilities(
    alpha: np.ndarray, beta: np.ndarray, n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Monte Carlo estimate of P(arm k has the highest draw) for each arm k (1-D alpha, beta).

    Each probability is floored at ``1 / n_samples`` (then renormalised) so that an importance weight
    ``1 / propensity`` stays finite for an arm the estimate happened to miss.
    """
    draws = rng.beta(alpha, beta, size=(n_samples, len(alpha)))  # (M, K)
    counts = np.bincount(draws.argmax(axis=1), minlength=len(alpha)).astype(float)
    probs = np.maximum(counts, 1.0) / n_samples
    return probs / probs.sum()


class PropensityCache:
    """``choice_probabilities`` memoised per posterior state (an LRU of at most ``size`` states)."""

    def __init__(self, n_samples: int, size: int, rng: np.random.Generator):
        self.n_samples = n_samples
        self.size = size
        self.rng = rng
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def probabilities(self, alpha: Sequence[float], beta: Sequence[float]) -> np.ndarray:
        key = (tuple(alpha), tuple(beta))
        probs = self._cache.get(key)
        if probs is not None:
            self._cache.move_to_end(key)
            return probs
        probs = choice_probabilities(
            np.asarray(alpha, float), np.asarray(beta, float), self.n_samples, self.rng
        )
        if self.size:
            self._cache[key] = probs
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return probs
