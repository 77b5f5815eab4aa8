"""Prior calibration: empirical Bayes recovers the temperature and strength that generated the logged clicks,
finds no temperature where the RM's ranking says nothing, and names a missing column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from caig.errors import UserError
from caig.orchestration.prior_calibration import (
    beta_binomial_loglik,
    calibrated_means,
    calibration_frame,
    fit_prior_calibration,
)
from caig.orchestration.rm_priors import prior_means


def _logs(temperature: float, strength: float, informative: bool, seed: int = 0) -> tuple:
    """RM log-strengths and logged clicks drawn from Beta(n m, n (1 - m)) priors around them."""
    rng = np.random.default_rng(seed)
    n_products, k = 400, 8
    rows, totals = [], []
    for p in range(n_products):
        scores = rng.normal(0, 0.4, k)
        ctr = rng.uniform(0.02, 0.08)
        driver = scores if informative else rng.normal(0, 0.4, k)
        means = prior_means(driver, ctr, temperature)
        true_ctr = rng.beta(strength * means, strength * (1 - means))
        impressions = rng.integers(2_000, 6_000, k)
        clicks = rng.binomial(impressions, true_ctr)
        for j in range(k):
            cid = f"C{p}_{j}"
            rows.append({"product_id": f"P{p}", "creative_id": cid, "log_strength": scores[j]})
            totals.append(
                {
                    "creative_id": cid,
                    "product_id": f"P{p}",
                    "impressions": impressions[j],
                    "clicks": clicks[j],
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(totals)


def test_the_fit_recovers_the_temperature_and_strength_behind_the_clicks():
    frame = calibration_frame(*_logs(temperature=3.0, strength=400.0, informative=True))
    fit = fit_prior_calibration(frame)
    assert fit.prior_temperature == pytest.approx(3.0, rel=0.15)
    assert fit.prior_strength == pytest.approx(400.0, rel=0.3)
    assert fit.loglik_gain_per_creative > 0.05
    assert fit.strength_product_only < fit.prior_strength  # without the ranking the CTRs look more spread


def test_a_ranking_unrelated_to_the_clicks_gets_no_temperature():
    frame = calibration_frame(*_logs(temperature=3.0, strength=400.0, informative=False))
    fit = fit_prior_calibration(frame)
    assert fit.prior_temperature < 0.5
    assert fit.loglik_gain_per_creative < 0.01


def test_calibrated_means_are_the_serving_formula_over_every_ranked_creative():
    ranking = pd.DataFrame(
        {
            "product_id": list("AAAAB"),
            "creative_id": list("vwxyz"),
            "log_strength": [0.5, 0.0, -0.5, 0.3, 2.0],
        }
    )
    totals = pd.DataFrame(  # v has never been shown: it still counts in its product's normalisation
        {
            "creative_id": list("wxyz"),
            "product_id": list("AAAB"),
            "impressions": [100, 100, 100, 50],
            "clicks": [9, 4, 2, 3],
        }
    )
    frame = calibration_frame(ranking, totals)
    assert frame["impressions"].tolist() == [0, 100, 100, 100, 50]
    means = calibrated_means(frame, 2.0)
    np.testing.assert_allclose(means[:4], prior_means(np.array([0.5, 0.0, -0.5, 0.3]), 16 / 302, 2.0))
    assert means[4] == pytest.approx(4 / 52)  # a lone creative keeps its product's CTR


def test_the_likelihood_is_scipys_beta_binomial_at_the_temperatures_means():
    ranking = pd.DataFrame({"product_id": ["A", "A"], "creative_id": ["x", "y"], "log_strength": [0.4, -0.4]})
    totals = pd.DataFrame(
        {"creative_id": ["x", "y"], "product_id": ["A", "A"], "impressions": [10, 20], "clicks": [1, 3]}
    )
    frame = calibration_frame(ranking, totals)
    m = prior_means(np.array([0.4, -0.4]), 5 / 32, 3.0)
    expected = stats.betabinom.logpmf([1, 3], [10, 20], 30 * m, 30 * (1 - m)).sum()
    assert beta_binomial_loglik(frame, 3.0, 30.0) == pytest.approx(expected)
    assert beta_binomial_loglik(frame, 1.0, 30.0) != pytest.approx(expected)


def test_no_logged_impression_and_a_missing_column_are_named():
    ranking = pd.DataFrame({"product_id": ["A"], "creative_id": ["x"], "log_strength": [0.0]})
    none = pd.DataFrame({"creative_id": ["x"], "product_id": ["A"], "impressions": [0], "clicks": [0]})
    with pytest.raises(UserError, match="no ranked creative has logged impressions"):
        calibration_frame(ranking, none)
    with pytest.raises(UserError, match=r"lacks column\(s\) \['clicks'\]"):
        calibration_frame(ranking, none.drop(columns="clicks"))
