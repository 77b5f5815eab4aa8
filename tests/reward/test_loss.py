"""Eq. 5-7 of the paper: CE, point loss and their weighted sum; the text head's answer loss."""

from __future__ import annotations

import math

import pytest
import torch

from caig.reward.loss import answer_loss, classification_loss, point_loss, reward_loss


def test_classification_loss_is_mean_cross_entropy() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(1 / (1 + math.e))) / 2
    assert classification_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_soft_labels_weight_both_sides_and_hard_ones_match_integer_labels() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    log_p_left = [math.log(math.exp(2) / (math.exp(2) + 1)), math.log(1 / (1 + math.e))]
    log_p_right = [math.log(1 / (math.exp(2) + 1)), math.log(math.e / (1 + math.e))]
    p_right = torch.tensor([0.25, 0.9])
    expected = (
        -((0.75 * log_p_left[0] + 0.25 * log_p_right[0]) + (0.1 * log_p_left[1] + 0.9 * log_p_right[1])) / 2
    )
    assert classification_loss(logits, p_right).item() == pytest.approx(expected, rel=1e-6)
    hard = torch.tensor([0, 1])
    assert classification_loss(logits, hard.float()).item() == pytest.approx(
        classification_loss(logits, hard).item(), rel=1e-6
    )


def test_point_loss_sums_both_ctrs_and_averages_pairs() -> None:
    pred = torch.tensor([[0.1, 0.2], [0.0, 0.0]])
    true = torch.tensor([[0.0, 0.0], [0.3, 0.4]])
    # pair 1: 0.01 + 0.04 = 0.05; pair 2: 0.09 + 0.16 = 0.25; mean 0.15
    assert point_loss(pred, true).item() == pytest.approx(0.15, rel=1e-6)


def test_reward_loss_weights_ce_and_point() -> None:
    logits = torch.tensor([[0.5, -0.5]])
    labels = torch.tensor([1])
    pred, true = torch.tensor([[0.2, 0.1]]), torch.tensor([[0.0, 0.0]])
    ce, pt = classification_loss(logits, labels).item(), point_loss(pred, true).item()
    out = reward_loss(logits, pred, labels, true, ce_weight=1.0, point_weight=0.5)
    assert out["loss"].item() == pytest.approx(ce + 0.5 * pt, rel=1e-6)
    assert out["ce"].item() == pytest.approx(ce) and out["point"].item() == pytest.approx(pt)
    assert reward_loss(logits, pred, labels, true, 1.0, 0.0)["loss"].item() == pytest.approx(ce)


def test_reward_loss_gradients_reach_both_heads() -> None:
    logits = torch.zeros(3, 2, requires_grad=True)
    ctr = torch.zeros(3, 2, requires_grad=True)
    reward_loss(logits, ctr, torch.tensor([0, 1, 0]), torch.full((3, 2), 0.05))["loss"].backward()
    assert logits.grad.abs().sum() > 0 and ctr.grad.abs().sum() > 0


def test_answer_loss_targets_the_answer_token() -> None:
    lm_logits = torch.zeros(2, 10)
    lm_logits[0, 3] = 5.0  # row 0 says token 3 ("left")
    lm_logits[1, 7] = 5.0  # row 1 says token 7 ("right")
    answer_ids = torch.tensor([3, 7])
    right = answer_loss(lm_logits, torch.tensor([0, 1]), answer_ids)
    wrong = answer_loss(lm_logits, torch.tensor([1, 0]), answer_ids)
    assert right.item() < 0.1 < wrong.item()


def test_soft_answer_loss_weights_the_two_answer_tokens() -> None:
    lm_logits = torch.randn(3, 10)
    answer_ids = torch.tensor([3, 7])
    log_p = torch.log_softmax(lm_logits, dim=-1)
    p_right = torch.tensor([0.0, 0.5, 0.8])
    expected = -((1 - p_right) * log_p[:, 3] + p_right * log_p[:, 7]).mean()
    assert answer_loss(lm_logits, p_right, answer_ids).item() == pytest.approx(expected.item(), rel=1e-5)
    hard = answer_loss(lm_logits, torch.tensor([0, 1, 1]), answer_ids)
    assert answer_loss(lm_logits, torch.tensor([0.0, 1.0, 1.0]), answer_ids).item() == pytest.approx(
        hard.item()
    )


def test_eq7_weights_are_the_papers_by_default_in_the_loss_and_the_config() -> None:
    """lambda1 = 1 and lambda2 = 0.5 (paper Eq. 7): the sum, the function's defaults, and the RM config's."""
    from caig.reward.config import RewardConfig

    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    pred, true = torch.tensor([[0.1, 0.2], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.3, 0.4]])
    parts = reward_loss(logits, pred, labels, true)
    ce, point = classification_loss(logits, labels).item(), point_loss(pred, true).item()
    assert parts["loss"].item() == pytest.approx(ce + 0.5 * point, rel=1e-6)
    assert parts["ce"].item() == pytest.approx(ce) and parts["point"].item() == pytest.approx(0.15)
    config = RewardConfig()
    assert (config.ce_weight, config.point_weight) == (1.0, 0.5)
    weighted = reward_loss(logits, pred, labels, true, config.ce_weight, config.point_weight)
    assert weighted["loss"].item() == pytest.approx(parts["loss"].item())
