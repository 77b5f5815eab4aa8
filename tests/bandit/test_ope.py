"""Off-policy estimators recover a target policy's value from logs of a different policy."""

from __future__ import annotations

import numpy as np
import pytest

from caig.bandit import ope


def _logs(n: int = 40000, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = np.array([0.02, 0.05, 0.10])
    logging_probs = np.array([0.5, 0.3, 0.2])
    action = rng.choice(3, size=n, p=logging_probs)
    reward = (rng.random(n) < means[action]).astype(float)
    return means, action, reward, logging_probs[action]


def test_ips_snips_and_dr_estimate_a_deterministic_policy_within_their_error():
    means, action, reward, propensity = _logs()
    target = np.tile([0.0, 0.0, 1.0], (len(action), 1))  # always the best arm
    rows = np.arange(len(action))
    q = np.tile([0.03, 0.03, 0.03], (len(action), 1))  # a poor reward model: DR must still be right
    for est in (
        ope.ips(reward, propensity, target[rows, action]),
        ope.snips(reward, propensity, target[rows, action]),
        ope.doubly_robust(reward, propensity, target, q, action),
    ):
        assert abs(est.value - means[2]) < 4 * est.stderr + 1e-3
    naive = reward.mean()
    assert abs(naive - means[2]) > 0.03  # the on-log average is far off: the estimators do real work


def test_doubly_robust_with_a_perfect_reward_model_has_lower_error():
    means, action, reward, propensity = _logs()
    target = np.tile([0.0, 0.0, 1.0], (len(action), 1))
    rows = np.arange(len(action))
    dr = ope.doubly_robust(reward, propensity, target, np.tile(means, (len(action), 1)), action)
    assert dr.stderr < ope.ips(reward, propensity, target[rows, action]).stderr


def test_propensities_outside_zero_one_are_refused():
    with pytest.raises(ValueError, match="propensities"):
        ope.ips(np.array([1.0]), np.array([0.0]), np.array([1.0]))
