"""Thompson sampling on Beta posteriors, and the probability that it picks each arm (its propensity).

The posterior of a creative's click rate is ``Beta(prior_alpha + clicks, prior_beta + impressions - clicks)``;
TS draws one click rate per creative and serves the creative with the highest draw. The probability of that
choice (needed by off-policy evaluation) has no closed form for more than two arms, so it is estimated by
Monte Carlo, and cached per posterior state: it only changes when feedback arrives.
"""

from __future__ import annotations

import math
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


_ONE_THIRD = 1.0 / 3.0


class BetaSampler:
    """One Thompson choice per request (a Beta draw per arm), in plain Python fed by numpy in bulk.

    Each Beta(a, b) draw is ``X / (X + Y)`` with ``X ~ Gamma(a)``, ``Y ~ Gamma(b)``, each Gamma by Marsaglia and
    Tsang's method (ACM TOMS 26(3), 2000) from one standard normal and one uniform (a shape below 1 takes one
    more uniform: ``Gamma(a) = Gamma(a + 1) * U ** (1 / a)``). The normals and uniforms are drawn by numpy
    ``block`` at a time, so a request makes no numpy call (a microsecond of overhead each) and no Python RNG
    call per variate: about 2.5x faster than ``random.betavariate`` for a handful of arms, with the same
    distribution (every normal and uniform is used once).
    """

    def __init__(self, rng: np.random.Generator, block: int = 4096):
        self.rng = rng
        self.block = block
        self._fill()

    def _fill(self) -> None:
        self._normal = self.rng.standard_normal(self.block).tolist()
        self._uniform = self.rng.random(self.block).tolist()
        self._next = 0

    def gamma(self, shape: float) -> float:
        """One Gamma(shape, 1) draw (shape > 0)."""
        boost = 1.0
        if shape < 1.0:
            if self._next == self.block:
                self._fill()
            boost = self._uniform[self._next] ** (1.0 / shape)
            self._next += 1
            shape += 1.0
        d = shape - _ONE_THIRD
        c = _ONE_THIRD / math.sqrt(d)
        while True:
            if self._next == self.block:
                self._fill()
            x, u = self._normal[self._next], self._uniform[self._next]
            self._next += 1
            v = 1.0 + c * x
            if v > 0.0:
                v = v * v * v
                xx = x * x
                # the squeeze accepts ~98% of draws without a logarithm
                if u < 1.0 - 0.0331 * xx * xx or math.log(u) < 0.5 * xx + d * (1.0 - v + math.log(v)):
                    return d * v * boost

    def choice(self, alpha: Sequence[float], beta: Sequence[float]) -> int:
        """``thompson_choice`` for one request: index of the arm with the highest Beta(alpha, beta) draw."""
        gamma = self.gamma
        best, top = 0, -1.0
        for k in range(len(alpha)):
            x = gamma(alpha[k])
            draw = x / (x + gamma(beta[k]))
            if draw > top:
                best, top = k, draw
        return best


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
    """``choice_probabilities`` memoised per posterior state (an LRU of at most ``size`` states), as a tuple
    of Python floats (what a response carries)."""

    def __init__(self, n_samples: int, size: int, rng: np.random.Generator):
        self.n_samples = n_samples
        self.size = size
        self.rng = rng
        self._cache: OrderedDict[tuple, tuple[float, ...]] = OrderedDict()

    def probabilities(self, alpha: Sequence[float], beta: Sequence[float]) -> tuple[float, ...]:
        key = (tuple(alpha), tuple(beta))
        probs = self._cache.get(key)
        if probs is not None:
            self._cache.move_to_end(key)
            return probs
        probs = tuple(
            choice_probabilities(
                np.asarray(alpha, float), np.asarray(beta, float), self.n_samples, self.rng
            ).tolist()
        )
        if self.size:
            self._cache[key] = probs
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return probs
