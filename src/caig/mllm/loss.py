"""The SFT loss of the multi-task mix: cross-entropy on answer tokens, averaged per example.

A token average lets long answers (a 25-token background description) outweigh short ones (a 2-token
category) twelve to one, so image understanding would barely train; averaging each example's answer tokens
first gives every task example the same weight. ``loss_average: token`` keeps the usual HF token average.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from caig.mllm.encode import IGNORE_INDEX


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over each example's labelled tokens: (B, T, V), (B, T) -> (B,)."""
    target = labels[:, 1:].to(logits.device)  # (B, T-1): token t+1 is predicted at position t
    token_loss = F.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), target, ignore_index=IGNORE_INDEX, reduction="none"
    )  # (B, T-1)
    mask = (target != IGNORE_INDEX).float()
    return (token_loss * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def example_mean_loss(examples_per_step: int) -> Callable[..., torch.Tensor]:
    """A ``Trainer(compute_loss_func=...)`` giving the per-example mean over one optimizer step.

    ``examples_per_step`` is batch size x gradient accumulation x processes: the Trainer treats the loss of a
    ``compute_loss_func`` as already scaled for accumulation and multiplies it by the process count.
    """

    def loss(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        return per_example_loss(outputs.logits, labels).sum() / examples_per_step

    return loss
