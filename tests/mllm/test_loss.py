"""The per-example SFT loss."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from caig.mllm.encode import IGNORE_INDEX
from caig.mllm.loss import example_mean_loss, per_example_loss


def test_per_example_loss_averages_each_examples_answer_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor(
        [[IGNORE_INDEX, IGNORE_INDEX, 3, 4, 5], [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 6, IGNORE_INDEX]]
    )
    got = per_example_loss(logits, labels)
    first = F.cross_entropy(logits[0, 1:4], labels[0, 2:5])
    second = F.cross_entropy(logits[1, 2:3], labels[1, 3:4])
    assert torch.allclose(got, torch.stack([first, second]))


def test_short_and_long_answers_weigh_the_same():
    torch.manual_seed(0)
    logits = torch.randn(2, 9, 7)
    labels = torch.full((2, 9), IGNORE_INDEX)
    labels[0, 1:] = torch.randint(0, 7, (8,))  # long answer
    labels[1, 8] = 2  # one-token answer
    loss = example_mean_loss(2)(SimpleNamespace(logits=logits), labels)
    token_mean = F.cross_entropy(
        logits[:, :-1].reshape(-1, 7), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX
    )
    assert torch.allclose(loss, per_example_loss(logits, labels).mean())
    assert not torch.allclose(loss, token_mean)
