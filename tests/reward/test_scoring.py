"""Pair accuracy in both orders, one order, swap disagreement and skill; the CTR head's margin as a ranker."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tests.reward.conftest import pair_slice

from caig.reward.metrics import pair_metrics, skill
from caig.reward.scoring import RewardScorer


def test_swap_consistent_model_counts_once_per_pair() -> None:
    # A model that truly compares: P(left) = 0.8 for pair 0 (left better), 0.3 for pair 1 (right better).
    p_left = np.array([0.8, 0.3])
    p_swapped = 1 - p_left  # the same judgement seen from the other side
    m = pair_metrics(p_left, p_swapped, np.array([True, False]))
    assert m == {"pair_accuracy": 1.0, "pair_accuracy_one_order": 1.0, "swap_disagreement": 0.0, "pairs": 2}


def test_side_biased_model_disagrees_with_itself() -> None:
    # Always "left": right in one order for left-labelled pairs, but the swapped order says the opposite.
    p_left = np.full(4, 0.9)
    p_swapped = np.full(4, 0.9)
    labels = np.array([True, True, True, False])
    m = pair_metrics(p_left, p_swapped, labels)
    assert m["pair_accuracy_one_order"] == pytest.approx(0.75)  # the official protocol flatters it
    assert m["swap_disagreement"] == 1.0
    assert m["pair_accuracy"] == pytest.approx(0.25)  # averaged P = 0.5 exactly: counted as "right"


def test_both_orders_average_probabilities() -> None:
    # Order 1 says left weakly (0.55), order 2 says right strongly (P(stored left) = 1 - 0.8 = 0.2).
    m = pair_metrics(np.array([0.55]), np.array([0.8]), np.array([True]))
    assert m["pair_accuracy_one_order"] == 1.0 and m["pair_accuracy"] == 0.0 and m["swap_disagreement"] == 1.0


def test_skill() -> None:
    assert skill(0.7, 0.8) == pytest.approx(2 / 3)
    assert skill(0.5, 0.8) == 0.0
    assert skill(0.7, None) is None and skill(0.7, 0.5) is None


def test_ctr_margin_is_swap_consistent(tiny_model_dir, rm_config, train_pairs) -> None:
    """The CTR head's margin averages both orders: showing every pair swapped negates it exactly."""
    from caig.mllm.build import load_model
    from caig.reward.model import build_reward_model

    llava, processor = load_model(tiny_model_dir)
    config = dataclasses.replace(rm_config, template=0)
    scorer = RewardScorer(build_reward_model(llava, processor, config), processor, config)
    torch.nn.init.normal_(scorer.model.ctr_head.weight)  # a head that tells the sides apart
    source = pair_slice(train_pairs, 6)
    columns = {f"{a}_{c}": f"{b}_{c}" for a, b in (("left", "right"), ("right", "left"))
               for c in ("creative_id", "image_path", "ctr")}  # fmt: skip
    swapped = dataclasses.replace(source, pairs=source.pairs.rename(columns=columns))
    p_left, p_swapped, margin = scorer.score_source_with_margin(source)
    assert np.abs(margin).min() > 0  # the pairs differ
    np.testing.assert_allclose(scorer.score_source_with_margin(swapped)[2], -margin, rtol=1e-5, atol=1e-6)
    # the same passes give score_source's probabilities
    for mine, theirs in zip((p_left, p_swapped), scorer.score_source(source), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6)


def test_pair_matrix_averages_both_orders_of_every_pair() -> None:
    """A side-biased judge (prefers the left ad by 0.3 whatever it sees) cancels out: M[i, j] + M[j, i] = 1,
    and the matrix keeps only the ads' own difference."""
    strength = {"a": 0.2, "b": 0.0, "c": -0.1}

    class SideBiased(RewardScorer):
        def __init__(self) -> None:  # no model: the judge's answers are the formula below
            pass

        def _encode(self, product, left, right):
            return (left, right)

        def prob_left(self, examples):
            return np.array([0.5 + 0.3 + strength[left] - strength[right] for left, right in examples])

    m = SideBiased().pair_matrix({"product_id": "P1"}, ["a", "b", "c"])
    np.testing.assert_allclose(m + m.T, np.ones((3, 3)))
    np.testing.assert_allclose(np.diag(m), 0.5)
    assert m[0, 1] == pytest.approx(0.7) and m[1, 2] == pytest.approx(0.6) and m[0, 2] == pytest.approx(0.8)
