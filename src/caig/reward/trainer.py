"""Train the RM with the HF Trainer and a custom ``compute_loss`` (Eq. 7), full fine-tuning or LoRA.

The RM starts from a saved LLaVA-NeXT (``caig mllm build`` or ``caig pretrain``: Table 1's "e-commerce
pre-training" switch is which one). LoRA touches only the language model's linear layers (never the vision
tower or projector); the heads are always trained. The saved RM directory is self-contained: the backbone
(adapters merged) loadable with ``from_pretrained``, ``rm_heads.safetensors`` and ``rm.json``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainingArguments

from caig.distributed import (
    DeepSpeedConfig,
    check_shardable,
    gathered_model,
    is_main_process,
    load_deepspeed_config,
    single_process_environment,
)
from caig.errors import UserError
from caig.mllm.build import load_model, model_dir_of, save_model
from caig.reward.ad_utility import HELD_OUT_FIT, AdSource, ad_recipes, held_out_fit
from caig.reward.config import RewardConfig
from caig.reward.curriculum import Stage, training_stages
from caig.reward.inputs import answer_token_ids
from caig.reward.loss import answer_loss, reward_loss
from caig.reward.model import RewardModel
from caig.reward.pairs_dataset import (
    Collator,
    EncodingCollator,
    PairSource,
    SwapPairCollator,
    check_recipes,
    encode_recipes,
    pair_recipes,
)
from caig.reward.perception import perception_borrowed, train_perception
from caig.reward.shared_stages import (
    cached_renders,
    data_fingerprint,
    fingerprint,
    load_perceived,
    save_perceived,
    shared_dir,
)
from caig.reward.wrap import build_reward_model, use_cpu_threads
from caig.typed_config import as_dict, build_config

log = logging.getLogger("caig.reward")
HEADS_FILE, META_FILE = "rm_heads.safetensors", "rm.json"


class RewardTrainer(Trainer):
    """HF Trainer whose loss is the RM's: Eq. 7 (classification head) or the answer's LM loss (text head)."""

    def __init__(self, *args: Any, reward_config: RewardConfig, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reward_config = reward_config
        self._parts: dict[str, list[float]] = {"ce": [], "point": []}

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


def deepspeed_config(config: RewardConfig) -> DeepSpeedConfig | None:
    """``reward.deepspeed_config`` checked (file, JSON, ZeRO stage, what cannot shard); None without DeepSpeed.

    Under ZeRO-3 only the logged-pairs stage runs: perception trains the vision tower in a loop of its own,
    outside the engine; ad utility scores held-out ads with the model between stages; the side warm-up and the
    teacher are stages of their own, each a new engine over a model the previous one left sharded.
    """
    deepspeed = load_deepspeed_config("reward.deepspeed_config", config.deepspeed_config)
    blockers = [
        (f"reward.{name}.enabled=true", why)
        for name, why in (
            ("perception", "trains the vision tower in its own loop, outside the DeepSpeed engine"),
            ("ad_utility", "scores held-out ads with the model outside the engine between stages"),
            ("side_warmup", "is a curriculum stage of its own (a second engine over a sharded model)"),
            ("teacher", "is a curriculum stage of its own (a second engine over a sharded model)"),
        )
        if getattr(config, name).enabled
    ]
    check_shardable(deepspeed, blockers)
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
    """AdamW whose two heads learn ``head_lr_scale`` times faster than the backbone; None (the Trainer's
    own optimizer) when the scale is 1. The heads start from random weights while the backbone is pre-trained."""
    if config.head_lr_scale == 1.0:
        return None
    heads = [
        p for n, p in model.named_parameters() if n.startswith(("cls_head.", "ctr_head.")) and p.requires_grad
    ]
    head_ids = {id(p) for p in heads}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    return torch.optim.AdamW(
        [
            {"params": rest, "lr": config.learning_rate, "weight_decay": config.weight_decay},
            {"params": heads, "lr": config.learning_rate * config.head_lr_scale, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )


def train_reward_model(
    model_dir: str | Path,
    source: PairSource,
    config: RewardConfig,
    out: str | Path,
    data_dir: str | Path | None = None,
    shared: str | Path | None = None,
    after_stage: Callable[[str, RewardModel, Any, RewardConfig], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Fine-tune an RM from the model in ``model_dir`` on ``source``'s pairs; save it to ``out``.

    With ``reward.perception`` / ``reward.side_warmup`` / ``reward.teacher`` enabled, their stages train the
    same model first (``data_dir``, where the pairs' creatives live, is needed for perception and the
    teacher). ``shared``: a folder where RMs trained from the same start model, data and seed keep and reuse
    the perceived vision tower and the borrowed renders (``caig.reward.shared_stages``; the ablation's rows).
    ``after_stage(name, model, processor, config)``, called after each curriculum stage, returns measurements
    kept in that stage's summary under ``after_stage`` (e.g. the skill each stage leaves: rm_skill.py
    ``--stage-skill``); it must not change the weights (the model goes back into training mode after it).
    Returns the training summary (also written to ``out/train.json``): pairs, steps, seconds, loss curve of
    the last stage, and every stage's.
    """
    out = Path(out)
    deepspeed_config(config)  # a bad DeepSpeed config stops the run before the model loads
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    use_cpu_threads(config)
    llava, processor = load_model(model_dir_of(model_dir))  # a `caig pretrain` output or a model directory
    model = build_reward_model(llava.to(process_device()), processor, config)
    trainer = None
    curriculum = training_stages(source, config, data_dir, out, shared)
    stages = []
    if config.perception.enabled:  # the vision tower first: every later stage reads its tokens
        stages.append(
            perception_stage(model.llava, processor, Path(model_dir), data_dir, config, out, shared)
        )
    for stage in curriculum:
        stage_summary, trainer = run_stage(model, processor, stage, out)
        stages.append(stage_summary)
        if after_stage is not None:
            stages[-1]["after_stage"] = after_stage(stage.name, model, processor, stage.config)
            model.train()  # a RewardScorer in the callback puts it in eval mode
    rebuild = lambda: build_reward_model(load_model(model_dir_of(model_dir))[0], processor, config)  # noqa: E731
    whole = gathered_model(trainer, model, rebuild) if trainer is not None else model
    summary = {
        **{k: stages[-1][k] for k in ("pairs", "steps", "train_loss", "loss_curve")},
        "seconds": round(time.perf_counter() - started, 1),
        "model": str(model_dir),
        "method": config.method,
        "head": config.head,
        "seed": config.seed,
        "stages": stages,
    }
    if whole is None or not is_main_process():  # another process of a launched job: rank 0 saves
        return summary
    save_reward_model(whole, processor, config, out)
    (out / "train.json").write_text(json.dumps(summary, indent=2))
    return summary


def training_device() -> str:
    """The GPU where there is one (as the HF Trainer chooses), so that perception trains there too."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def process_device() -> str:
    """This process's device: its own GPU (LOCAL_RANK) in a launched job, so that N processes do not all
    load the model onto the first GPU before the Trainer places it; else ``training_device()``."""
    if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return training_device()


def perception_stage(
    llava: Any,
    processor: Any,
    model_dir: Path,
    data_dir: str | Path | None,
    config: RewardConfig,
    out: Path,
    shared: str | Path | None,
) -> dict[str, Any]:
    """The perception stage on ``llava`` in place; its summary. With ``shared``, the tower perceived by an
    earlier RM of the same start model, data, seed, settings and device is loaded instead of trained."""
    if data_dir is None:
        raise UserError("reward.perception needs the data directory of the training ads (--world DIR)")
    tower_dir = None
    if shared is not None:
        tower_dir = shared_dir(
            shared, "perception", model=fingerprint(model_dir), data=data_fingerprint(data_dir),
            seed=config.seed, image_side=config.image_side, perception=as_dict(config.perception),
            method=config.method,  # LoRA freezes the tower: perception then trains the probe only
            device=training_device(),
        )  # fmt: skip
        summary = load_perceived(llava, tower_dir)
        if summary is not None:
            return summary
    per_product = config.perception.borrowed_per_product
    borrowed = cached_renders(
        shared, out / "perception_borrowed", data_dir, per_product, config.seed,
        lambda folder: perception_borrowed(data_dir, config.perception, folder, config.seed),
    )  # fmt: skip
    _, summary = train_perception(
        llava, processor, data_dir, config.perception, config.image_side, config.seed, borrowed
    )
    if tower_dir is not None:
        save_perceived(llava, summary, tower_dir)
    return summary


def fit_stage(model: RewardModel, processor: Any, stage: Stage, out: Path) -> dict[str, Any]:
    """Train ``model`` in place on one stage's pairs; its summary (pairs, steps, seconds, loss curve)."""
    return run_stage(model, processor, stage, out)[0]


def run_stage(model: RewardModel, processor: Any, stage: Stage, out: Path) -> tuple[dict[str, Any], Trainer]:
    """``fit_stage``'s summary and the Trainer that ran it (its engine holds the weights under ZeRO-3)."""
    started = time.perf_counter()
    config, source = stage.config, stage.source
    examples, collator = stage_examples(source, processor, config)
    log.info("RM stage %s: %d examples, %s, head %s", stage.name, len(examples), config.method, config.head)
    trainer = RewardTrainer(
        model=model,
        args=training_arguments(
            config,
            out / "trainer" / stage.name,
            len(examples),
            encode_per_batch=isinstance(getattr(collator, "collate", collator), EncodingCollator),
        ),
        train_dataset=examples,
        data_collator=collator,
        reward_config=config,
        optimizers=(head_scaled_optimizer(model, config), None),
    )
    result = trainer.train()
    measured = {}
    if isinstance(source, AdSource):
        measured = {k: round(v, 4) for k, v in held_out_fit(model, source, processor, config).items()}
        log.info(
            "RM stage %s: held-out utility correlation %.3f (own creatives %.3f, within product %.3f)",
            stage.name, *(measured[key] for key in HELD_OUT_FIT),
        )  # fmt: skip
    summary = {
        "stage": stage.name,
        "pairs": len(examples),
        **measured,
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


def stage_examples(
    source: PairSource | AdSource, processor: Any, config: RewardConfig
) -> tuple[list[Any], Any]:
    """A stage's examples and their collator: single ads (held-out products left out), or pairs in one order,
    both orders, or both orders per example for swap-consistent training; encoded up front or per batch
    (``up_front_or_per_batch``)."""
    if isinstance(source, AdSource):
        ads = source.ads[~source.ads["held_out"]]
        return up_front_or_per_batch(
            ad_recipes(ads, source.products, processor, config, config.seed), processor, config
        )
    recipes: list[Any] = pair_recipes(source, processor, config, seed=config.seed)
    if config.swap_consistent_training:
        swapped = pair_recipes(source, processor, config, swap=True, seed=config.seed)
        return up_front_or_per_batch(
            [{"ab": ab, "ba": ba} for ab, ba in zip(recipes, swapped)], processor, config
        )
    if config.train_both_orders:
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


def save_reward_model(model: RewardModel, processor: Any, config: RewardConfig, out: str | Path) -> Path:
    """Save backbone (LoRA merged), heads and ``rm.json`` (the RewardConfig it was trained with)."""
    out = Path(out)
    llava = model.llava
    if config.method == "lora":
        llava = _merge_lora(llava)
    if config.gradient_checkpointing:
        llava.gradient_checkpointing_disable()
    save_model(llava, processor, out)
    save_file(
        {
            "cls_head": model.cls_head.weight.detach().contiguous().cpu(),
            "ctr_head": model.ctr_head.weight.detach().contiguous().cpu(),
        },
        str(out / HEADS_FILE),
    )
    (out / META_FILE).write_text(json.dumps({"reward": as_dict(config), "head": config.head}, indent=2))
    return out


def _merge_lora(llava: Any) -> Any:
    """Fold LoRA deltas into the base weights and restore plain Linear layers."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(llava.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(llava.get_submodule(parent_name), child, module.get_base_layer())
    return llava


def load_reward_config(rm_dir: str | Path) -> RewardConfig:
    """The RewardConfig an RM saved by ``train_reward_model`` was trained with (``rm.json``; no weights read)."""
    path = Path(rm_dir) / META_FILE
    if not path.is_file():
        raise UserError(f"{rm_dir} holds no {META_FILE}; train a reward model with `caig rm train --out DIR`")
    return build_config(RewardConfig, json.loads(path.read_text())["reward"], "reward", str(path))


def load_reward_model(rm_dir: str | Path, device: str | None = None) -> tuple[RewardModel, Any, RewardConfig]:
    """Load an RM saved by ``train_reward_model``: (model in eval mode, processor, its RewardConfig)."""
    rm_dir = Path(rm_dir)
    config = load_reward_config(rm_dir)
    llava, processor = load_model(rm_dir)
    answer_ids = answer_token_ids(processor) if config.head == "text" else None
    model = RewardModel(llava, config.head, answer_ids)
    heads = load_file(str(rm_dir / HEADS_FILE))
    model.cls_head.weight.data.copy_(heads["cls_head"])
    model.ctr_head.weight.data.copy_(heads["ctr_head"])
    device = device or training_device()
    use_cpu_threads(config)
    return model.to(device).eval(), processor, config
