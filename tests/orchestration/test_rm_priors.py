"""RM priors: Bradley-Terry strengths scale the product's logged CTR; priors stay valid Beta parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from caig.orchestration.rm_priors import prior_means, product_ctr


def test_equal_strengths_give_the_product_ctr_to_every_creative():
    np.testing.assert_allclose(prior_means(np.zeros(4), 0.04), 0.04)


def test_a_stronger_creative_gets_a_higher_mean_and_the_average_is_kept():
    scores = np.array([0.5, 0.0, -0.5])
    means = prior_means(scores, 0.05)
    assert means[0] > means[1] > means[2]
    assert means.mean() == pytest.approx(0.05)
    assert means[0] / means[1] == pytest.approx(np.exp(0.5))


def test_means_stay_inside_the_unit_interval():
    means = prior_means(np.array([30.0, -30.0, -30.0]), 0.9)
    assert ((means > 0) & (means < 1)).all()


def test_product_ctr_sums_days_and_segments_with_laplace_smoothing():
    stats = pd.DataFrame({"product_id": ["P1", "P1", "P2"], "impressions": [100, 98, 0], "clicks": [5, 4, 0]})
    ctr = product_ctr(stats)
    assert ctr["P1"] == pytest.approx(10 / 200) and ctr["P2"] == pytest.approx(0.5)
