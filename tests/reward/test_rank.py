"""Bradley-Terry ranking over pair scores."""

from __future__ import annotations

import numpy as np
import pytest

from caig.reward.rank import bradley_terry, rank, rank_from_matrix


def _bt_matrix(strength: np.ndarray) -> np.ndarray:
    p = strength[:, None] / (strength[:, None] + strength[None, :])
    np.fill_diagonal(p, 0.5)
    return p


def test_bradley_terry_recovers_strengths_from_exact_probabilities() -> None:
    strength = np.array([1.0, 3.0, 0.5, 2.0])
    scores = bradley_terry(_bt_matrix(strength), prior=0.0)
    expected = np.log(strength) - np.log(strength).mean()
    np.testing.assert_allclose(scores, expected, atol=1e-6)


def test_prior_keeps_a_clean_sweep_finite() -> None:
    wins = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    scores = bradley_terry(wins, prior=0.5)
    assert np.all(np.isfinite(scores)) and scores[0] > scores[1] > scores[2]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="square"):
        bradley_terry(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        bradley_terry(-np.ones((2, 2)))


def test_rank_orders_candidates_best_first() -> None:
    ranking = rank_from_matrix(_bt_matrix(np.array([1.0, 4.0, 2.0])))
    assert ranking.order == [1, 2, 0]


class _FakeScorer:
    """Prefers brighter images: P(i beats j) from mean brightness (stands in for a trained RM)."""

    def pair_matrix(self, product, images):
        b = np.array([np.asarray(im).mean() + 1.0 for im in images])
        return _bt_matrix(b)


def test_rank_with_a_scorer_and_single_candidate() -> None:
    from PIL import Image

    images = [Image.new("RGB", (8, 8), (v, v, v)) for v in (10, 200, 90)]
    assert rank(_FakeScorer(), {}, images).order == [1, 2, 0]
    assert rank(_FakeScorer(), {}, images[:1]).order == [0]
    with pytest.raises(ValueError):
        rank(_FakeScorer(), {}, [])
