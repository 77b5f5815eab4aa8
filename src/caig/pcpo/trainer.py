"""One round's training of the prompt model on preference pairs: DPO (+ PCPO), LoRA policy, reference =
the same network with its adapters disabled (no second copy of the weights).

TRL's DPOTrainer has no term for the same response under a mismatched product input, so the step is ours;
it reuses the HF pieces (PEFT adapters, transformers' scheduler, the mllm stage's encoder and collator).
Reference log-probs are computed once per round, before training, since the reference never changes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from caig.mllm.encode import Collator, encode_example
from caig.pcpo.config import PCPOConfig
from caig.pcpo.engine import PolicyEngine
from caig.pcpo.loss import dpo_loss, pcpo_loss, sequence_logprob
from caig.pcpo.mismatch import ProductInput

log = logging.getLogger("caig.pcpo")


@dataclass(frozen=True)
class PreferencePair:
    """One product's preference: chosen and rejected descriptions, and a mismatched input for PCPO."""

    product: ProductInput
    question: str
    chosen: str
    rejected: str
    mismatched: ProductInput | None = None
    mismatched_question: str | None = None
    chosen_probability: float = 0.5  # the RM's swap-consistent P(chosen gets more clicks than rejected)
    mismatch_kind: str | None = None  # "visual" or "textual" (PCPO); None for DPO


def response_logprobs(
    model,
    processor,
    images: Sequence,
    questions: Sequence[str],
    answers: Sequence[str],
    batch_size: int,
    max_length: int,
    grad: bool = False,
    forward=None,
) -> torch.Tensor:
    """Summed log-probability of each answer given its image and question: (N,).

    ``forward`` runs a batch (default ``model``): the DDP or DeepSpeed wrapper when the pass trains.
    """
    collate = Collator(processor)
    forward = forward or model
    out = []
    for start in range(0, len(answers), batch_size):
        examples = [
            encode_example(processor, images[i], questions[i], answers[i], max_length)
            for i in range(start, min(start + batch_size, len(answers)))
        ]
        batch = {k: v.to(model.device) for k, v in collate(examples).items()}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(model.dtype)
        labels = batch.pop("labels")
        with torch.set_grad_enabled(grad):
            logits = forward(**batch).logits
            out.append(sequence_logprob(logits.float(), labels))
    return torch.cat(out) if out else torch.zeros(0)


def _columns(pairs: Sequence[PreferencePair], with_mismatch: bool):
    images = [p.product.image for p in pairs]
    questions = [p.question for p in pairs]
    cols = {
        "chosen": (images, questions, [p.chosen for p in pairs]),
        "rejected": (images, questions, [p.rejected for p in pairs]),
    }
    if with_mismatch:
        cols["mismatched"] = (
            [p.mismatched.image for p in pairs],
            [p.mismatched_question for p in pairs],
            [p.chosen for p in pairs],
        )
    return cols


def reference_logprobs(model, processor, pairs: Sequence[PreferencePair], config: PCPOConfig) -> dict:
    """Log-probs under the frozen reference: the policy with its LoRA adapters disabled."""
    with_mismatch = config.method != "dpo"
    model.eval()
    with model.disable_adapter():
        return {
            k: response_logprobs(
                model, processor, *v, batch_size=config.batch_size, max_length=config.max_length
            )
            for k, v in _columns(pairs, with_mismatch).items()
        }


def local_share(indices: Sequence[int], rank: int, world_size: int) -> tuple[list[int], list[float]]:
    """This process's part of a global batch and each example's weight (0: padding).

    Every process takes ``ceil(len / N)`` examples, the last ones padded with a repeat weighted 0, so all run
    the same forward (DeepSpeed's collectives must match) and the weighted sums add up to the global batch's.
    """
    size = math.ceil(len(indices) / world_size)
    part = [int(i) for i in indices[rank * size : (rank + 1) * size]]
    weights = [1.0] * len(part) + [0.0] * (size - len(part))
    return part + [int(indices[0])] * (size - len(part)), weights


def train_round(
    engine: PolicyEngine,
    processor,
    pairs: Sequence[PreferencePair],
    config: PCPOConfig,
    rng: np.random.Generator,
) -> dict:
    """One epoch over this round's pairs (the same on every process; each trains on its share of every
    global batch of ``pcpo.batch_size``); returns mean losses and the DPO reward accuracy."""
    if not pairs:
        return {"steps": 0, "loss": float("nan"), "dpo_loss": float("nan"), "pcpo_loss": float("nan")}
    steps = math.ceil(len(pairs) / config.batch_size)
    scheduler = engine.new_round(steps, config.warmup_ratio)
    order = rng.permutation(len(pairs))
    history = {"loss": [], "dpo_loss": [], "pcpo_loss": [], "reward_accuracy": []}
    for start in tqdm(range(0, len(pairs), config.batch_size), desc="pcpo step", unit="step", leave=False):
        idx, weights = local_share(order[start : start + config.batch_size], engine.rank, engine.world_size)
        batch = [pairs[i] for i in idx]
        size = len(order[start : start + config.batch_size])
        stats = _step(engine, scheduler, processor, batch, weights, size, config)
        for key, value in stats.items():
            history[key].append(value)
    engine.policy.eval()
    return {"steps": steps, **{k: float(np.mean(v)) if v else float("nan") for k, v in history.items()}}


def _step(
    engine: PolicyEngine,
    scheduler,
    processor,
    batch: Sequence[PreferencePair],
    weights: Sequence[float],
    global_size: int,
    config: PCPOConfig,
) -> dict:
    """One optimizer step on this process's share; the returned statistics are the global batch's.

    The columns (chosen, rejected, and the chosen under a mismatched input) go through one forward; the loss
    is this share's weighted sum over the global batch size, times the process count, so that the gradients
    the processes average are the gradient of the global batch's mean loss.
    """
    with_mismatch = config.method != "dpo"
    model = engine.policy
    ref = reference_logprobs(model, processor, batch, config)  # adapters off: the frozen base
    model.train()
    cols = _columns(batch, with_mismatch)
    images, questions, answers = ([x for col in cols.values() for x in col[i]] for i in range(3))
    logp = response_logprobs(
        model,
        processor,
        images,
        questions,
        answers,
        batch_size=len(answers),
        max_length=config.max_length,
        grad=True,
        forward=engine.trained,
    )
    pi = dict(zip(cols, logp.split(len(batch)), strict=True))
    weight = torch.tensor(weights, device=logp.device)
    dpo = dpo_loss(pi["chosen"], pi["rejected"], ref["chosen"], ref["rejected"], config.beta)
    total = dpo
    pcpo = torch.zeros_like(dpo)
    if with_mismatch:
        pcpo = pcpo_loss(pi["chosen"], pi["mismatched"], ref["chosen"], ref["mismatched"], config.beta_p)
        total = dpo + config.pcpo_weight * pcpo
    loss = (weight * total).sum() * engine.world_size / global_size
    engine.backward_and_step(loss, scheduler)
    accuracy = ((pi["chosen"] - ref["chosen"]) > (pi["rejected"] - ref["rejected"])).float()
    sums = torch.stack([(weight * x.detach().float()).sum() for x in (total, dpo, pcpo, accuracy)])
    loss_mean, dpo_mean, pcpo_mean, accuracy_mean = (
        engine.accelerator.reduce(sums, "sum") / global_size
    ).tolist()
    return {
        "loss": loss_mean,
        "dpo_loss": dpo_mean,
        "pcpo_loss": pcpo_mean if with_mismatch else float("nan"),
        "reward_accuracy": accuracy_mean,
    }
