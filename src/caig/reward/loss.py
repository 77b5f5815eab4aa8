"""The RM's training losses, as pure functions on tensors (paper section 3.3, Eq. 5-7).

- Eq. 5, ``L_CE = -sum_i t_i log p_i``: cross-entropy of the left/right classification (mean over pairs);
- Eq. 6, ``L_Point = (1/N) sum_i ||FC_ctr(h_i) - t_i||_2^2``: squared error of the two predicted CTRs;
- Eq. 7, ``L_reward = lambda1 L_CE + lambda2 L_Point`` with lambda1 = 1, lambda2 = 0.5 (REFERENCE.md).

The ``text`` head of Table 1's first rows trains by generating the answer: the LM loss of its first token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 5: mean cross-entropy of (B, 2) left/right logits against labels in {0 = left, 1 = right}.

    Integer labels are the logged winners; float labels are soft targets ``t = (1 - p, p)`` with ``p`` the
    probability that the right ad is better (a teacher's, ``caig.reward.curriculum.teacher``): Eq. 5 with soft ``t_i``.
    """
    if labels.is_floating_point():
        p_right = labels.float().clamp(0.0, 1.0)
        log_p = F.log_softmax(logits.float(), dim=-1)
        return -((1.0 - p_right) * log_p[:, 0] + p_right * log_p[:, 1]).mean()
    return F.cross_entropy(logits.float(), labels.long())


def point_loss(ctr_pred: torch.Tensor, ctr_true: torch.Tensor) -> torch.Tensor:
    """Eq. 6: squared L2 distance of (B, 2) predicted and true [ctr_left, ctr_right], averaged over pairs."""
    return ((ctr_pred.float() - ctr_true.float()) ** 2).sum(dim=1).mean()


def reward_loss(
    logits: torch.Tensor,
    ctr_pred: torch.Tensor,
    labels: torch.Tensor,
    ctr_true: torch.Tensor,
    ce_weight: float = 1.0,
    point_weight: float = 0.5,
) -> dict[str, torch.Tensor]:
    """Eq. 7: ``ce_weight * L_CE + point_weight * L_Point``; returns ``loss``, ``ce`` and ``point``."""
    ce = classification_loss(logits, labels)
    point = point_loss(ctr_pred, ctr_true)
    total = ce_weight * ce + (point_weight * point if point_weight else 0.0)
    return {"loss": total, "ce": ce.detach(), "point": point.detach()}


def answer_loss(lm_logits: torch.Tensor, labels: torch.Tensor, answer_ids: torch.Tensor) -> torch.Tensor:
    """LM loss of the answer's first token ("left" or "right") over the whole vocabulary: (B, V) logits.

    Float labels (soft, P(right is better)) weight the two answers' log-probabilities as in Eq. 5.
    """
    if labels.is_floating_point():
        p_right = labels.float().clamp(0.0, 1.0)
        log_p = F.log_softmax(lm_logits.float(), dim=-1)[:, answer_ids]
        return -((1.0 - p_right) * log_p[:, 0] + p_right * log_p[:, 1]).mean()
    return F.cross_entropy(lm_logits.float(), answer_ids[labels.long()])
