"""Preference losses of the paper, as pure functions on summed response log-probabilities.

Every argument is a tensor of shape (B,): the log-probability of a whole response (summed over its tokens)
under the policy (``pi_*``) or the frozen reference (``ref_*``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_loss(
    pi_chosen: torch.Tensor,
    pi_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """DPO (paper Eq. 10): ``-log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))``, per pair."""
    margin = (pi_chosen - ref_chosen) - (pi_rejected - ref_rejected)
    return -F.logsigmoid(beta * margin)


def pcpo_loss(
    pi_chosen: torch.Tensor,
    pi_chosen_mismatched: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_chosen_mismatched: torch.Tensor,
    beta_p: float,
) -> torch.Tensor:
    """PCPO (paper Eq. 11): the SAME chosen response under the matched and a mismatched product input,
    ``-log sigmoid(beta_p * ((pi_c - ref_c) - (pi_c_mis - ref_c_mis)))``, per pair.

    Only the product information changes between the two terms, so the loss can only fall by making the
    response depend on the product.
    """
    margin = (pi_chosen - ref_chosen) - (pi_chosen_mismatched - ref_chosen_mismatched)
    return -F.logsigmoid(beta_p * margin)


def preference_loss(dpo: torch.Tensor, pcpo: torch.Tensor | None, pcpo_weight: float) -> torch.Tensor:
    """Total objective (paper Eq. 12): mean DPO plus ``pcpo_weight`` times mean PCPO (weight 1 in the paper)."""
    total = dpo.mean()
    if pcpo is not None and pcpo_weight:
        total = total + pcpo_weight * pcpo.mean()
    return total


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Sum of log-probabilities of the label tokens, per sequence: (B, T, V), (B, T) -> (B,).

    ``labels`` are aligned with ``logits`` positions (the usual causal shift is done here) and hold
    ``ignore_index`` outside the response, so prompt and padding tokens count for nothing.
    """
    logits = logits[:, :-1, :]  # (B, T-1, V) predicts tokens 1..T-1
    labels = labels[:, 1:]  # (B, T-1)
    mask = labels != ignore_index
    safe = labels.masked_fill(~mask, 0)
    token_logp = torch.gather(logits.log_softmax(-1), 2, safe.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return (token_logp * mask).sum(-1)
