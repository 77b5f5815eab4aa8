"""Off-policy evaluation: the value (click rate) a new policy would have had, from logged bandit feedback.

The log holds, per impression, the action the logging policy took, its propensity ``p = P(action | x)`` and
the reward (clicked). For a target policy giving ``pi(a | x)``:

- IPS (Horvitz-Thompson): ``mean(pi(a_i|x_i) / p_i * r_i)``; unbiased when ``p > 0`` wherever ``pi > 0``.
- SNIPS: the same, divided by ``mean(pi(a_i|x_i) / p_i)``; a little biased, much lower variance.
- Doubly robust (Dudik et al. 2011): ``mean(sum_a pi(a|x_i) q(x_i, a) + pi(a_i|x_i) / p_i * (r_i - q(x_i, a_i)))``
  with a reward model ``q``; unbiased if either the propensities or ``q`` are right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A policy value estimate with its standard error (from the per-impression terms)."""

    value: float
    stderr: float
    n: int


def _estimate(terms: np.ndarray) -> Estimate:
    n = len(terms)
    if n == 0:
        raise ValueError("no logged impressions to evaluate")
    return Estimate(float(terms.mean()), float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"), n)


def _weights(target_prob: np.ndarray, propensity: np.ndarray) -> np.ndarray:
    propensity = np.asarray(propensity, float)
    if (propensity <= 0).any() or (propensity > 1).any() or np.isnan(propensity).any():
        raise ValueError("propensities must be in (0, 1]; log them with every impression")
    return np.asarray(target_prob, float) / propensity


def ips(reward: np.ndarray, propensity: np.ndarray, target_prob: np.ndarray) -> Estimate:
    """Inverse propensity scoring; ``target_prob[i] = pi(a_i | x_i)``, the target's prob. of the logged action."""
    return _estimate(_weights(target_prob, propensity) * np.asarray(reward, float))


def snips(reward: np.ndarray, propensity: np.ndarray, target_prob: np.ndarray) -> Estimate:
    """Self-normalised IPS (its stderr is the delta-method one)."""
    w = _weights(target_prob, propensity)
    r = np.asarray(reward, float)
    value = float((w * r).sum() / w.sum())
    est = _estimate(w * (r - value) / w.mean())
    return Estimate(value, est.stderr, est.n)


def doubly_robust(
    reward: np.ndarray, propensity: np.ndarray, target_probs: np.ndarray, q: np.ndarray, action: np.ndarray
) -> Estimate:
    """Doubly robust estimate.

    Args:
        reward, propensity, action: per logged impression (``action`` is the column index of the logged arm).
        target_probs: (N, K) target policy's probabilities over the K arms of each impression's context.
        q: (N, K) reward model's predicted click rate for each arm of each impression's context.
    """
    target_probs = np.asarray(target_probs, float)
    q = np.asarray(q, float)
    rows = np.arange(len(action))
    w = _weights(target_probs[rows, action], propensity)
    direct = (target_probs * q).sum(axis=1)
    return _estimate(direct + w * (np.asarray(reward, float) - q[rows, action]))
