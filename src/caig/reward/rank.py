"""Rank K candidate ad images of one product by a Bradley-Terry fit over the RM's pair scores.

Every ordered pair is scored (both orders, swap-consistent), giving soft wins ``W[i, j] = P(i beats j)``.
Bradley-Terry models ``P(i beats j) = s_i / (s_i + s_j)``; the strengths are fitted with the MM algorithm
(Hunter 2004, "MM algorithms for generalized Bradley-Terry models"), which converges monotonically. A small
prior (one pseudo-game at 0.5 against every other candidate) keeps strengths finite when one candidate wins
every comparison. Used by the PCPO loop (chosen vs. rejected) and by the selector's priors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image


@dataclass
class Ranking:
    """Candidates ordered best first, with their Bradley-Terry log-strengths and the pair matrix."""

    order: list[int]  # candidate indices, best first
    scores: np.ndarray  # log-strength per candidate (mean 0); higher is better
    win_prob: np.ndarray  # K x K swap-consistent P(i beats j)


def bradley_terry(
    wins: np.ndarray, prior: float = 0.5, iterations: int = 500, tol: float = 1e-10
) -> np.ndarray:
    """Log-strengths (mean 0) of a Bradley-Terry model fitted to a K x K matrix of (soft) wins.

    Args:
        wins: ``wins[i, j]`` = how often (or with what probability) i beat j; the diagonal is ignored.
        prior: pseudo-wins added to each side of every pair (0 for the plain maximum-likelihood fit).
        iterations: MM iterations at most.
        tol: stop when strengths move less than this.
    """
    wins = np.array(wins, dtype=float)
    k = wins.shape[0]
    if wins.shape != (k, k) or k == 0:
        raise ValueError("wins must be a non-empty square matrix")
    if (wins < 0).any():
        raise ValueError("wins must be non-negative")
    off = 1.0 - np.eye(k)
    wins = wins * off + prior * off
    games = wins + wins.T  # n_ij
    total_wins = wins.sum(axis=1)  # W_i
    strength = np.ones(k)
    for _ in range(iterations):
        denom = (games / (strength[:, None] + strength[None, :]) * off).sum(axis=1)
        updated = np.where(denom > 0, total_wins / np.maximum(denom, 1e-300), strength)
        updated = updated / np.exp(np.mean(np.log(np.maximum(updated, 1e-300))))
        if np.max(np.abs(updated - strength)) < tol:
            strength = updated
            break
        strength = updated
    log_strength = np.log(np.maximum(strength, 1e-300))
    return log_strength - log_strength.mean()


def rank_from_matrix(win_prob: np.ndarray, prior: float = 0.5) -> Ranking:
    """A ranking from a K x K matrix of P(i beats j) (ties broken by index)."""
    scores = bradley_terry(win_prob, prior=prior)
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return Ranking(order=order, scores=scores, win_prob=np.asarray(win_prob, dtype=float))


def rank(
    scorer: Any, product: Mapping[str, Any], images: Sequence[Image.Image], prior: float = 0.5
) -> Ranking:
    """Order K candidate ads of ``product`` (a catalog row) with the RM ``scorer`` (a ``RewardScorer``)."""
    if len(images) < 1:
        raise ValueError("rank needs at least one candidate image")
    if len(images) == 1:
        return Ranking(order=[0], scores=np.zeros(1), win_prob=np.full((1, 1), 0.5))
    return rank_from_matrix(scorer.pair_matrix(product, images), prior=prior)
