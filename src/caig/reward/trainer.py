"""Train the RM with the HF Trainer and a custom ``compute_loss`` (Eq. 7), full fine-tuning or LoRA.

The RM starts from a saved LLaVA-NeXT (``caig mllm build`` or ``caig pretrain``: Table 1's "e-commerce
pre-training" switch is which one). LoRA touches only the language model's linear layers (never the vision
tower or projector); the heads are always trained. The trained RM is saved with ``caig.reward.io``.

Training runs a list of stages over the same model, in order. A stage (``Stage``) has a name, the
``RewardConfig`` it trains with and a ``fit``; the trainer knows no more about it. The paper's RM has one
stage, the logged pairs (``PairStage``, ``train_reward_model``); the curriculum (``caig.reward.curriculum``,
off in the paper) puts its own stages in front of them (``train_stages``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from transformers import Trainer, TrainingArguments

from caig.distributed import (
    DeepSpeedConfig,
    check_shardable,
    gathered_model,
    is_main_process,
    load_deepspeed_config,
    single_process_environment,
)
from caig.mllm.build import load_model, model_dir_of
from caig.reward.config import RewardConfig
from caig.reward.data import (
    Collator,
    EncodingCollator,
    PairSource,
    SwapPairCollator,
    check_recipes,
    encode_recipes,
    pair_recipes,
)
from caig.reward.io import save_reward_model
from caig.reward.loss import answer_loss, reward_loss
from caig.reward.model import RewardModel, build_reward_model, training_device, use_cpu_threads

log = logging.getLogger("caig.reward")
StageResult = tuple[
    dict[str, Any], Trainer | None
]  # the stage's summary, and the Trainer that ran it (if any)


class RewardTrainer(Trainer):
    """HF Trainer whose loss is the RM's: Eq. 7 (classification head) or the answer's LM loss (text head)."""

    def __init__(self, *args: Any, reward_config: RewardConfig, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reward_config = reward_config
        self._parts: dict[str, list[float]] = {"ce": [], "point": []}

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        """The Trainer's AdamW, or with ``recipe.head_lr_scale`` != 1 ``head_scaled_optimizer``'s. Built here,
        not passed as ``optimizers=``: under DeepSpeed the Trainer drops a passed optimizer and calls this (a
        passed one trained every parameter at one rate on 2+ processes: tests/distributed)."""
        if self.optimizer is None:
            self.optimizer = head_scaled_optimizer(self.model if model is None else model, self.reward_config)
        return super().create_optimizer(model)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        cfg = self.reward_config
        out = model(**inputs)
        labels, ctr = inputs["labels"], inputs["ctr"]
        if "swap_pairs" in inputs:  # swap-consistent: average each pair's two orders, as scoring does
            n = int(inputs["swap_pairs"])
            out = {key: swap_average(out[key], n) for key in ("logits", "ctr")}
            labels, ctr = labels[:n], ctr[:n]
        if cfg.head == "text":
            loss = cfg.ce_weight * answer_loss(out["lm_logits"], inputs["labels"], model.answer_ids)
            self._parts["ce"].append(float(loss.detach()))
        else:
            parts = reward_loss(out["logits"], out["ctr"], labels, ctr, cfg.ce_weight, cfg.point_weight)
            loss = parts["loss"]
            self._parts["ce"].append(float(parts["ce"]))
            self._parts["point"].append(float(parts["point"]))
        return (loss, out) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        for key, values in self._parts.items():
            if values and "loss" in logs:
                logs[key] = sum(values) / len(values)
                values.clear()
        super().log(logs, *args, **kwargs)


class Stage(Protocol):
    """One pass of RM training over the model the stages before it left."""

    name: str  # names the stage in train.json and its Trainer's folder (out/trainer/NAME)
    config: RewardConfig  # the settings it trains with
    unshardable: tuple[str, str] | None  # (setting, why) when it cannot run under DeepSpeed ZeRO-3

    def fit(self, model: RewardModel, processor: Any, out: Path) -> StageResult:
        """Train ``model`` in place (``out``: the RM's directory); the stage's summary and its Trainer."""
        ...


@dataclass
class PairStage:
    """Pairs of ads trained with Eq. 7: the logged pairs (the paper's only stage), or a curriculum's."""

    name: str
    source: PairSource
    config: RewardConfig
    unshardable: tuple[str, str] | None = None

    def fit(self, model: RewardModel, processor: Any, out: Path) -> StageResult:
        examples, collator = pair_examples(self.source, processor, self.config)
        return fit_examples(model, processor, self.name, examples, collator, self.config, out)


@dataclass
class MeasuredStage:
    """A stage, then a measurement of the model it leaves, kept in its summary under ``after_stage`` (e.g. the
    skill after each curriculum stage: rm_skill.py ``--stage-skill``). ``measure(name, model, processor,
    config)`` must not change the weights; the model goes back into training mode after it."""

    stage: Stage
    measure: Callable[[str, RewardModel, Any, RewardConfig], dict[str, Any]]

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def config(self) -> RewardConfig:
        return self.stage.config

    @property
    def unshardable(self) -> tuple[str, str] | None:
        return self.stage.unshardable

    def fit(self, model: RewardModel, processor: Any, out: Path) -> StageResult:
        summary, trainer = self.stage.fit(model, processor, out)
        summary["after_stage"] = self.measure(self.name, model, processor, self.config)
        model.train()  # a RewardScorer in the measurement puts it in eval mode
        return summary, trainer


def deepspeed_config(
    config: RewardConfig, unshardable: Sequence[tuple[str, str]] = ()
) -> DeepSpeedConfig | None:
    """``reward.deepspeed_config`` checked (file, JSON, ZeRO stage); None without DeepSpeed. ``unshardable``:
    the (setting, why) of stages that cannot run under ZeRO-3 (``Stage.unshardable``), refused there: only the
    logged-pairs stage shards."""
    deepspeed = load_deepspeed_config("reward.deepspeed_config", config.deepspeed_config)
    check_shardable(deepspeed, list(unshardable))
    return deepspeed


def training_arguments(
    config: RewardConfig, out: Path, n_examples: int, encode_per_batch: bool = False
) -> TrainingArguments:
    """TrainingArguments from the RM config (no checkpoints: the tiny run is minutes; the RM is saved at the end);
    ``out`` is the stage's trainer directory. DataLoader workers (``encode_workers``) only where batches are
    encoded as they are drawn: padding encoded examples needs none. DeepSpeed when a config is named."""
    deepspeed = deepspeed_config(config)
    if deepspeed is not None:
        single_process_environment()
    return TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to=[],
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.bf16,
        remove_unused_columns=False,
        dataloader_num_workers=config.encode_workers if encode_per_batch else 0,
        dataloader_pin_memory=False,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=n_examples < 200,
        label_names=["labels", "ctr"],
        deepspeed=str(deepspeed.path) if deepspeed else None,
    )


def swap_average(values: torch.Tensor, n: int) -> torch.Tensor:
    """(2n, 2) outputs of n pairs then the same pairs swapped -> (n, 2) in the first order's sides, averaged."""
    return (values[:n] + values[n:].flip(-1)) / 2


def head_scaled_optimizer(model: RewardModel, config: RewardConfig) -> torch.optim.Optimizer | None:
    """AdamW whose two heads learn ``recipe.head_lr_scale`` times faster than the backbone; None (the Trainer's
    own optimizer) when the scale is 1. The heads start from random weights while the backbone is pre-trained."""
    if config.recipe.head_lr_scale == 1.0:
        return None
    heads = [
        p for n, p in model.named_parameters() if n.startswith(("cls_head.", "ctr_head.")) and p.requires_grad
    ]
    head_ids = {id(p) for p in heads}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    return torch.optim.AdamW(
        [
            {"params": rest, "lr": config.learning_rate, "weight_decay": config.weight_decay},
            {"params": heads, "lr": config.learning_rate * config.recipe.head_lr_scale, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )


def train_reward_model(
    model_dir: str | Path, source: PairSource, config: RewardConfig, out: str | Path
) -> dict[str, Any]:
    """The paper's RM: fine-tune the model in ``model_dir`` on ``source``'s pairs (Eq. 7); save it to ``out``.
    Returns the training summary (``train_stages``)."""
    return train_stages(model_dir, [PairStage("pairs", source, config)], config, out)


def train_stages(
    model_dir: str | Path,
    stages: Sequence[Stage],
    config: RewardConfig,
    out: str | Path,
    recorded: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an RM from the model in ``model_dir`` (``config``: its heads, LoRA, threads), train it on each of
    ``stages`` in turn and save it to ``out`` (``recorded``: more sections for its ``rm.json``).

    Returns the training summary (also written to ``out/train.json``): pairs, steps, loss and loss curve of the
    last stage, seconds, and every stage's summary.
    """
    out = Path(out)
    unshardable = [stage.unshardable for stage in stages if stage.unshardable]
    deepspeed_config(config, unshardable)  # a bad DeepSpeed config stops the run before the model loads
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    use_cpu_threads(config)
    llava, processor = load_model(model_dir_of(model_dir))  # a `caig pretrain` output or a model directory
    model = build_reward_model(llava.to(process_device()), processor, config)
    summaries, trainer = [], None
    for stage in stages:
        summary, stage_trainer = stage.fit(model, processor, out)
        summaries.append(summary)
        trainer = stage_trainer if stage_trainer is not None else trainer
    rebuild = lambda: build_reward_model(load_model(model_dir_of(model_dir))[0], processor, config)  # noqa: E731
    whole = gathered_model(trainer, model, rebuild) if trainer is not None else model
    summary = {
        **{k: summaries[-1][k] for k in ("pairs", "steps", "train_loss", "loss_curve")},
        "seconds": round(time.perf_counter() - started, 1),
        "model": str(model_dir),
        "method": config.method,
        "head": config.head,
        "seed": config.seed,
        "stages": summaries,
    }
    if whole is None or not is_main_process():  # another process of a launched job: rank 0 saves
        return summary
    save_reward_model(whole, processor, config, out, recorded)
    (out / "train.json").write_text(json.dumps(summary, indent=2))
    return summary


def process_device() -> str:
    """This process's device: its own GPU (LOCAL_RANK) in a launched job, so that N processes do not all
    load the model onto the first GPU before the Trainer places it; else ``training_device()``."""
    if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return training_device()


def fit_examples(
    model: RewardModel,
    processor: Any,
    name: str,
    examples: list[Any],
    collator: Any,
    config: RewardConfig,
    out: Path,
) -> StageResult:
    """Train ``model`` in place on a stage's examples with the HF Trainer; its summary (stage, pairs, steps,
    seconds, loss, learning rate, loss curve) and the Trainer that ran it (its engine holds the weights
    under ZeRO-3)."""
    started = time.perf_counter()
    log.info("RM stage %s: %d examples, %s, head %s", name, len(examples), config.method, config.head)
    trainer = RewardTrainer(
        model=model,
        args=training_arguments(
            config,
            out / "trainer" / name,
            len(examples),
            encode_per_batch=isinstance(getattr(collator, "collate", collator), EncodingCollator),
        ),
        train_dataset=examples,
        data_collator=collator,
        reward_config=config,
    )
    result = trainer.train()
    summary = {
        "stage": name,
        "pairs": len(examples),
        "steps": int(result.global_step),
        "seconds": round(time.perf_counter() - started, 1),
        "train_loss": float(result.training_loss),
        "learning_rate": config.learning_rate,
        "loss_curve": [
            {k: v for k, v in e.items() if k in ("step", "loss", "ce", "point")}
            for e in trainer.state.log_history
            if "loss" in e
        ],
    }
    return summary, trainer


def pair_examples(source: PairSource, processor: Any, config: RewardConfig) -> tuple[list[Any], Any]:
    """A pair stage's examples and their collator: pairs in one order, both orders, or both orders per example
    for swap-consistent training; encoded up front or per batch (``up_front_or_per_batch``)."""
    recipes: list[Any] = pair_recipes(source, processor, config, seed=config.seed)
    if config.recipe.swap_consistent_training:
        swapped = pair_recipes(source, processor, config, swap=True, seed=config.seed)
        return up_front_or_per_batch(
            [{"ab": ab, "ba": ba} for ab, ba in zip(recipes, swapped)], processor, config
        )
    if config.recipe.train_both_orders:
        recipes += pair_recipes(source, processor, config, swap=True, seed=config.seed + 1)
    return up_front_or_per_batch(recipes, processor, config)


def up_front_or_per_batch(items: list[Any], processor: Any, config: RewardConfig) -> tuple[list[Any], Any]:
    """Encode a stage's recipes once, up front, when they fit ``reward.encode_up_front_gb`` encoded (the
    first one, measured, times their number); else keep the recipes and encode each batch as it is drawn
    (``EncodingCollator``). Items are ``Recipe``s, or ``{"ab", "ba"}`` pairs of them (swap-consistent)."""
    swap = bool(items) and isinstance(items[0], dict)
    flat = [it[k] for k in ("ab", "ba") for it in items] if swap else items
    first = encode_recipes(flat[:1], processor, config)
    gigabytes = (
        len(flat) * sum(v.numel() * v.element_size() for v in first[0].values()) / 1e9 if first else 0.0
    )
    if gigabytes <= config.encode_up_front_gb:
        examples: list[Any] = encode_recipes(flat, processor, config)
        collate: Any = Collator(processor.tokenizer.pad_token_id)
        if swap:
            examples = [
                {"ab": ab, "ba": ba} for ab, ba in zip(examples[: len(items)], examples[len(items) :])
            ]
    else:
        log.info(
            "RM stage examples: %d would take %.1f GB encoded (> reward.encode_up_front_gb %.1f); "
            "encoding each batch as it is drawn",
            len(flat), gigabytes, config.encode_up_front_gb,
        )  # fmt: skip
        check_recipes(flat, processor, config, first[0])
        examples, collate = items, EncodingCollator(processor, config)
    return examples, (SwapPairCollator(collate) if swap else collate)
