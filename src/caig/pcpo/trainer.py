"""One round's training of the prompt model on preference pairs: DPO (+ PCPO), LoRA policy, reference =
the same network with its adapters disabled (no second copy of the weights).

TRL's DPOTrainer has no term for the same response under a mismatched product input, so the step is ours;
it reuses the HF pieces (PEFT adapters, transformers' scheduler, the mllm stage's encoder). Every pair is
trained on once a round, so its reference log-probs are computed once a round, in the step that trains on it
(no forward is saved by computing them all before the round, and each process computes only its share).
The log-probs come from ``caig.pcpo.logprobs``: a pair's chosen and rejected share their prompt's forward and
no (B, T, V) logits are made. The reference runs in forwards of whole pairs, ``pcpo.batch_size`` sequences at
most (``pair_chunks``), so its log-probs are the same on 1 process as on N, bit for bit; the policy runs one
forward for a process's share (the fewest forwards: the one that carries gradients costs three times more).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from caig.pcpo.config import PCPOConfig
from caig.pcpo.engine import PolicyEngine
from caig.pcpo.logprobs import encode, encoded_logprobs
from caig.pcpo.loss import dpo_loss, pcpo_loss
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


def encode_pairs(processor, pairs: Sequence[PreferencePair], config: PCPOConfig) -> list[dict]:
    """The sequences of ``pairs``, column after column (chosen, rejected and, for PCPO, the chosen under the
    mismatched input), encoded once for the reference and the policy."""
    cols = _columns(pairs, config.method != "dpo")
    images, questions, answers = ([x for col in cols.values() for x in col[i]] for i in range(3))
    return encode(processor, images, questions, answers, config.max_length)


def column_names(config: PCPOConfig) -> list[str]:
    """The sequences of a pair, in ``encode_pairs``' order: chosen, rejected and, for PCPO, mismatched."""
    return ["chosen", "rejected"] + (["mismatched"] if config.method != "dpo" else [])


def pair_chunks(pairs: int, config: PCPOConfig) -> list[range]:
    """The forwards of the reference pass over ``pairs`` pairs: consecutive whole pairs, as many as hold at
    most ``pcpo.batch_size`` sequences (at least one pair).

    The chunks depend on the pairs and the config only, not on the process count: on N processes a share of
    ``ceil(batch_size / N)`` pairs (``local_share``) that is a multiple of the chunk is cut into the chunks the
    single process cuts the whole batch into (with the test's batch of 4 PCPO pairs, one pair a forward), so
    each reference log-prob comes out of the same forward, bit for bit. Every process has as many pairs as
    the others (``local_share`` pads), hence as many forwards: DeepSpeed's collectives match.
    """
    size = max(1, config.batch_size // len(column_names(config)))
    return [range(start, min(start + size, pairs)) for start in range(0, pairs, size)]


def pair_logprobs(
    model,
    processor,
    pairs: Sequence[PreferencePair],
    config: PCPOConfig,
    grad: bool = False,
    forward=None,
    mode: str = "fast",
    examples: Sequence[dict] | None = None,
    chunks: Sequence[range] | None = None,
) -> dict[str, torch.Tensor]:
    """Log-probs of the columns, one forward per chunk of whole pairs (``chunks``; default all the pairs in
    one forward, the same count on every process): a pair's chosen and rejected share their prompt's forward
    (``caig.pcpo.logprobs``). ``examples``: ``encode_pairs(processor, pairs, config)`` if already made."""
    if examples is None:
        examples = encode_pairs(processor, pairs, config)
    columns, n = column_names(config), len(pairs)
    parts = [torch.zeros(len(columns), 0, device=model.device)]
    for chunk in [range(n)] if chunks is None else chunks:
        picked = [examples[c * n + i] for c in range(len(columns)) for i in chunk]  # encode_pairs' order
        logp = encoded_logprobs(model, processor, picked, len(picked), grad, forward, mode)
        parts.append(logp.reshape(len(columns), len(chunk)))
    logp = torch.cat(parts, dim=1)
    return dict(zip(columns, logp.unbind(0), strict=True))


def reference_logprobs(
    model,
    processor,
    pairs: Sequence[PreferencePair],
    config: PCPOConfig,
    mode: str = "fast",
    examples: Sequence[dict] | None = None,
) -> dict:
    """Log-probs under the frozen reference: the policy with its LoRA adapters disabled, in forwards of
    whole pairs (``pair_chunks``: the same forwards whatever the process count)."""
    model.eval()
    chunks = pair_chunks(len(pairs), config)
    with model.disable_adapter():
        return pair_logprobs(model, processor, pairs, config, mode=mode, examples=examples, chunks=chunks)


def preference_losses(
    pi: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], config: PCPOConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per pair: the objective (DPO + ``pcpo_weight`` x PCPO), DPO, PCPO (zeros for DPO)."""
    dpo = dpo_loss(pi["chosen"], pi["rejected"], ref["chosen"], ref["rejected"], config.beta)
    if config.method == "dpo":
        return dpo, dpo, torch.zeros_like(dpo)
    pcpo = pcpo_loss(pi["chosen"], pi["mismatched"], ref["chosen"], ref["mismatched"], config.beta_p)
    return dpo + config.pcpo_weight * pcpo, dpo, pcpo


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
    mode: str = "fast",
) -> dict:
    """One optimizer step on this process's share; the returned statistics are the global batch's.

    The columns (chosen, rejected, and the chosen under a mismatched input) go through the reference in
    forwards of whole pairs (``pair_chunks``) and through the policy in one forward, sequences that share a
    prompt packed into one row (``caig.pcpo.logprobs``); the loss
    is this share's weighted sum over the global batch size, times the process count, so that the gradients
    the processes average are the gradient of the global batch's mean loss. ``mode``: how log-probs are
    computed (``caig.pcpo.logprobs.MODES``; benchmarks/trainer_vs_trl.py times the others).
    """
    model = engine.policy
    examples = encode_pairs(processor, batch, config)
    ref = reference_logprobs(model, processor, batch, config, mode, examples)  # adapters off: the base
    model.train()
    pi = pair_logprobs(model, processor, batch, config, True, engine.trained, mode, examples)
    weight = torch.tensor(weights, device=pi["chosen"].device)
    total, dpo, pcpo = preference_losses(pi, ref, config)
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
        "pcpo_loss": pcpo_mean if config.method != "dpo" else float("nan"),
        "reward_accuracy": accuracy_mean,
    }
