"""DPO and PCPO losses against hand-computed values."""

import math

import torch

from caig.pcpo.loss import dpo_loss, pcpo_loss, preference_loss, sequence_logprob


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_dpo_loss_hand_computed():
    # margin = (-10 - -12) - (-11 - -10) = 2 - (-1) = 3; beta 0.5 -> -log sigmoid(1.5)
    loss = dpo_loss(_t(-10.0), _t(-11.0), _t(-12.0), _t(-10.0), beta=0.5)
    assert math.isclose(loss.item(), -math.log(1 / (1 + math.exp(-1.5))), rel_tol=1e-12)


def test_pcpo_loss_hand_computed():
    # margin = (-10 - -12) - (-20 - -15) = 2 - (-5) = 7; beta_p 0.5 -> -log sigmoid(3.5)
    loss = pcpo_loss(_t(-10.0), _t(-20.0), _t(-12.0), _t(-15.0), beta_p=0.5)
    assert math.isclose(loss.item(), math.log1p(math.exp(-3.5)), rel_tol=1e-12)


def test_losses_equal_log2_when_policy_is_reference():
    x = _t(-3.0, -7.0)
    assert torch.allclose(
        dpo_loss(x, x + 1, x, x + 1, beta=0.5), torch.full((2,), math.log(2), dtype=torch.float64)
    )
    assert torch.allclose(
        pcpo_loss(x, x - 2, x, x - 2, beta_p=0.5), torch.full((2,), math.log(2), dtype=torch.float64)
    )


def test_total_objective_adds_weighted_pcpo():
    dpo, pcpo = _t(1.0, 3.0), _t(2.0, 2.0)
    assert preference_loss(dpo, pcpo, 1.0).item() == 4.0
    assert preference_loss(dpo, pcpo, 0.5).item() == 3.0
    assert preference_loss(dpo, None, 1.0).item() == 2.0


def test_sequence_logprob_sums_only_response_tokens():
    logits = torch.log(
        torch.tensor([[[0.5, 0.5], [0.25, 0.75], [0.9, 0.1], [0.5, 0.5]]], dtype=torch.float64)
    )
    labels = torch.tensor([[-100, -100, 1, 0]])  # tokens 2 and 3 are the response
    # token 2 predicted at position 1 (p=0.75), token 3 at position 2 (p=0.9)
    expected = math.log(0.75) + math.log(0.9)
    assert math.isclose(sequence_logprob(logits, labels).item(), expected, rel_tol=1e-12)
