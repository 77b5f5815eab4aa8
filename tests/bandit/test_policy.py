"""Thompson sampling choices and their propensities."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from caig.bandit.policy import BetaSampler, PropensityCache, choice_probabilities, posterior, thompson_choice


def test_posterior_adds_clicks_and_non_clicks_to_the_prior():
    alpha, beta = posterior(np.array([2.0, 1.0]), np.array([8.0, 1.0]), np.array([10, 0]), np.array([3, 0]))
    assert alpha.tolist() == [5.0, 1.0] and beta.tolist() == [15.0, 1.0]


def test_thompson_prefers_the_arm_with_the_better_posterior_but_still_explores():
    rng = np.random.default_rng(0)
    alpha, beta = np.array([30.0, 10.0, 12.0]), np.array([70.0, 90.0, 88.0])
    picks = np.array([thompson_choice(alpha, beta, rng) for _ in range(2000)])
    assert (picks == 0).mean() > 0.95
    batched = thompson_choice(np.tile(alpha, (500, 1)), np.tile(beta, (500, 1)), rng)
    assert batched.shape == (500,) and (batched == 0).mean() > 0.95


def test_monte_carlo_propensity_matches_the_exact_two_arm_probability():
    a, b = np.array([12.0, 9.0]), np.array([88.0, 91.0])
    # P(X0 > X1) = integral of pdf0(x) * cdf1(x)
    exact, _ = integrate.quad(lambda x: stats.beta.pdf(x, a[0], b[0]) * stats.beta.cdf(x, a[1], b[1]), 0, 1)
    probs = choice_probabilities(a, b, 20000, np.random.default_rng(1))
    assert abs(probs.sum() - 1.0) < 1e-9
    assert abs(probs[0] - exact) < 0.015


def test_propensity_is_floored_so_importance_weights_stay_finite():
    probs = choice_probabilities(
        np.array([500.0, 1.0]), np.array([1.0, 500.0]), 100, np.random.default_rng(0)
    )
    assert probs[1] > 0 and abs(probs.sum() - 1) < 1e-9


def test_propensity_cache_reuses_a_state_and_recomputes_a_new_one():
    cache = PropensityCache(200, 10, np.random.default_rng(0))
    first = cache.probabilities([5.0, 3.0], [50.0, 50.0])
    assert cache.probabilities([5.0, 3.0], [50.0, 50.0]) is first
    other = cache.probabilities([5.0, 30.0], [50.0, 50.0])
    assert other[1] > other[0]


def test_the_servers_per_request_draw_follows_the_same_choice_probabilities():
    sampler = BetaSampler(np.random.default_rng(0), block=64)  # a small block: refilled many times
    alpha, beta = [12.0, 9.0, 10.0], [88.0, 91.0, 90.0]
    picks = np.bincount([sampler.choice(alpha, beta) for _ in range(6000)], minlength=3) / 6000
    expected = choice_probabilities(np.array(alpha), np.array(beta), 50000, np.random.default_rng(2))
    assert np.abs(picks - expected).max() < 0.03


@pytest.mark.parametrize("shape", [0.3, 1.0, 2.5, 47.0])
def test_the_samplers_gamma_draws_have_the_gamma_mean_and_variance(shape):
    sampler = BetaSampler(np.random.default_rng(1), block=1000)
    draws = np.array([sampler.gamma(shape) for _ in range(40000)])
    assert (draws > 0).all()
    # Gamma(shape, 1): mean = variance = shape; 40k draws put both within a few percent
    assert abs(draws.mean() / shape - 1) < 0.03 and abs(draws.var() / shape - 1) < 0.06
