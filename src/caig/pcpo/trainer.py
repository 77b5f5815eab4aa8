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
from transformers import get_scheduler

from caig.mllm.encode import Collator, encode_example
from caig.pcpo.config import PCPOConfig
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
) -> torch.Tensor:
    """Summed log-probability of each answer given its image and question: (N,)."""
    collate = Collator(processor)
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
            logits = model(**batch).logits
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


def train_round(
    model, processor, pairs: Sequence[PreferencePair], config: PCPOConfig, rng: np.random.Generator
) -> dict:
    """One epoch over this round's pairs; returns mean losses and the DPO reward accuracy."""
    if not pairs:
        return {"steps": 0, "loss": float("nan"), "dpo_loss": float("nan"), "pcpo_loss": float("nan")}
    ref = reference_logprobs(model, processor, pairs, config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    steps = math.ceil(len(pairs) / config.batch_size)
    scheduler = get_scheduler(
        "cosine", optimizer, num_warmup_steps=int(config.warmup_ratio * steps), num_training_steps=steps
    )
    order = rng.permutation(len(pairs))
    history = {"loss": [], "dpo_loss": [], "pcpo_loss": [], "reward_accuracy": []}
    model.train()
    for start in tqdm(range(0, len(pairs), config.batch_size), desc="pcpo step", unit="step", leave=False):
        idx = order[start : start + config.batch_size]
        batch = [pairs[i] for i in idx]
        stats = _step(model, processor, batch, {k: v[idx] for k, v in ref.items()}, config)
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        for key, value in stats.items():
            history[key].append(value)
    model.eval()
    return {"steps": steps, **{k: float(np.mean(v)) if v else float("nan") for k, v in history.items()}}


def _step(model, processor, batch: Sequence[PreferencePair], ref: dict, config: PCPOConfig) -> dict:
    with_mismatch = config.method != "dpo"
    cols = _columns(batch, with_mismatch)
    pi = {
        k: response_logprobs(
            model, processor, *v, batch_size=len(batch), max_length=config.max_length, grad=True
        )
        for k, v in cols.items()
    }
    dpo = dpo_loss(pi["chosen"], pi["rejected"], ref["chosen"], ref["rejected"], config.beta)
    loss = dpo.mean()
    pcpo_value = float("nan")
    if with_mismatch:
        pcpo = pcpo_loss(pi["chosen"], pi["mismatched"], ref["chosen"], ref["mismatched"], config.beta_p)
        loss = loss + config.pcpo_weight * pcpo.mean()
        pcpo_value = float(pcpo.mean().detach())
    loss.backward()
    accuracy = ((pi["chosen"] - ref["chosen"]) > (pi["rejected"] - ref["rejected"])).float().mean()
    return {
        "loss": float(loss.detach()),
        "dpo_loss": float(dpo.mean().detach()),
        "pcpo_loss": pcpo_value,
        "reward_accuracy": float(accuracy),
    }
