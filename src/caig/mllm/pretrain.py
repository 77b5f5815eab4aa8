"""E-commerce knowledge pre-training (paper section 3.2): multi-task SFT of the MLLM on the task mix.

The HF ``Trainer`` runs it: full fine-tuning or LoRA (PEFT) on the language model's linear layers, loss on
answer tokens only (``caig.mllm.encode``), checkpoints every ``save_steps`` and a resume from the last one
when ``OUT/checkpoints`` already holds some (a killed run picks up where it stopped), and the same code path
with a DeepSpeed ZeRO config (``pretrain.deepspeed_config``) under ``torchrun``/``deepspeed`` on GPUs.

``OUT/model`` is the pre-trained model (LoRA merged), loadable like the input; ``OUT/pretrain.json`` has the
loss curve and, on held-out products, category accuracy and PM match rate before and after.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from caig.distributed import (
    DeepSpeedConfig,
    gathered_model,
    is_main_process,
    load_deepspeed_config,
    single_process_environment,
)
from caig.errors import UserError
from caig.mllm.build import load_model, save_model
from caig.mllm.config import PretrainConfig
from caig.mllm.dataset import TaskDataset
from caig.mllm.encode import Collator
from caig.mllm.loss import example_mean_loss
from caig.mllm.token_budget import check_limit
from caig.world.marker import is_simulated

if TYPE_CHECKING:
    from caig.profile import Profile

log = logging.getLogger("caig.mllm")


def lora_wrap(model: Any, config: PretrainConfig) -> Any:
    """Add LoRA adapters to the language model's linear layers only (not vision tower, projector, lm_head)."""
    from peft import LoraConfig, get_peft_model

    names = "|".join(config.lora_target_modules)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=rf".*language_model.*\.({names})",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    if config.gradient_checkpointing:
        model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still need input grads
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(
        "LoRA r=%d alpha=%d on %s: %.2fM trainable parameters",
        config.lora_r,
        config.lora_alpha,
        names,
        trainable / 1e6,
    )
    return model


def training_arguments(config: PretrainConfig, out: Path) -> TrainingArguments:
    """The Trainer's arguments from the pretrain config (DeepSpeed when a config file is named)."""
    deepspeed = deepspeed_config(config)
    if deepspeed is not None:
        single_process_environment()
    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.bf16,
        deepspeed=str(deepspeed.path) if deepspeed else None,
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=False,
        optim="adamw_torch",
        average_tokens_across_devices=True,
        # named only when on: newer transformers renamed it activation_checkpointing and warn on the old name
        **({"gradient_checkpointing": True} if config.gradient_checkpointing else {}),
    )


def deepspeed_config(config: PretrainConfig) -> DeepSpeedConfig | None:
    """``pretrain.deepspeed_config`` checked (file, JSON, ZeRO stage); None without DeepSpeed.

    Every pre-training setting shards under ZeRO-3: the trained weights are gathered from the engine
    (``caig.distributed.gathered_model``) before LoRA is merged, the model saved and evaluated.
    """
    return load_deepspeed_config("pretrain.deepspeed_config", config.deepspeed_config)


def check_sharding(
    config: PretrainConfig, deepspeed: DeepSpeedConfig | None, examples: Any, world_size: int
) -> None:
    """Refuse text-only task examples where DeepSpeed needs every process to run the vision tower.

    A batch without an image skips the vision tower. Under ZeRO-3 its parameters are then not gathered on
    that process while the others gather them; under ZeRO-1/2 full fine-tuning its gradients are missing
    from that process's reduction: either way the processes' collectives stop matching and the job hangs or
    aborts. DDP (no DeepSpeed) finds the unused parameters; LoRA under ZeRO-1/2 trains only the language
    model's layers, which every batch runs. One process has nothing to match.
    """
    if deepspeed is None or world_size < 2 or (deepspeed.zero_stage < 3 and config.method == "lora"):
        return
    no_image = examples["image_path"].isna() | (examples["image_path"] == "")
    counts = examples[no_image].groupby("task").size()
    if counts.empty:
        return
    task, n = str(counts.index[0]), int(counts.iloc[0])
    fixes = "pretrain.deepspeed_config='' (DDP)" + (
        " or pretrain.method=lora" if deepspeed.zero_stage < 3 else ""
    )
    raise UserError(
        f"{deepspeed.key}={deepspeed.path} (ZeRO-{deepspeed.zero_stage}, {config.method}, {world_size} "
        f"processes) cannot train text-only examples ({task}: {n}), whose batches skip the vision tower on one "
        f"process but not another; set pretrain.tasks.{task}=0 and rebuild the mix (caig mllm tasks), or {fixes}"
    )


def train(
    model: Any,
    processor: Any,
    dataset: TaskDataset,
    config: PretrainConfig,
    out: Path,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Run (or resume) the SFT; return the loss curve, steps and the checkpoint resumed from."""
    return fit(model, processor, dataset, config, out, callbacks)[0]


def fit(
    model: Any,
    processor: Any,
    dataset: TaskDataset,
    config: PretrainConfig,
    out: Path,
    callbacks: Sequence[Any] = (),
) -> tuple[dict[str, Any], Trainer]:
    """``train``'s summary and the Trainer it ran (whose engine holds the weights under ZeRO-3)."""
    args = training_arguments(config, out)
    last = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
    if last:
        log.info("resuming from %s", last)
    loss = None
    if config.loss_average == "example":
        loss = example_mean_loss(config.batch_size * config.grad_accum * args.world_size)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=Collator(processor),
        callbacks=list(callbacks),
        compute_loss_func=loss,
    )
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    curve = [
        {"step": h["step"], "epoch": round(h["epoch"], 4), "loss": h["loss"]}
        for h in trainer.state.log_history
        if "loss" in h
    ]
    summary = {
        "resumed_from": Path(last).name if last else None,
        "global_step": trainer.state.global_step,
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_loss": result.training_loss,
        "loss_curve": curve,
        "distributed": _distributed(trainer),
    }
    return summary, trainer


def _distributed(trainer: Trainer) -> dict[str, Any]:
    """How the run was distributed: DeepSpeed on or off, its ZeRO stage, the process count."""
    plugin = trainer.accelerator.state.deepspeed_plugin if trainer.is_deepspeed_enabled else None
    return {
        "deepspeed": trainer.is_deepspeed_enabled,
        "zero_stage": plugin.zero_stage if plugin else None,
        "world_size": trainer.args.world_size,
    }


def run_pretrain(
    profile: Profile,
    model_dir: str | Path,
    tasks_dir: str | Path,
    out: str | Path,
    world_dir: str | Path | None = None,
    eval_world_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Pre-train the model in ``model_dir`` on the task mix in ``tasks_dir``; write ``out/model`` and
    ``out/pretrain.json``. ``world_dir`` overrides where the task images are (default: the mix's world);
    ``eval_world_dir`` evaluates on another world's products (a held-out seed) instead of held-out products.
    """
    threads = torch.get_num_threads()
    if profile.pretrain.cpu_threads and not torch.cuda.is_available():
        torch.set_num_threads(profile.pretrain.cpu_threads)
    try:
        return _run(profile, Path(model_dir), Path(tasks_dir), Path(out), world_dir, eval_world_dir)
    finally:
        torch.set_num_threads(threads)


def _run(
    profile: Profile,
    model_dir: Path,
    tasks_dir: Path,
    out: Path,
    world_dir: str | Path | None,
    eval_world_dir: str | Path | None,
) -> dict[str, Any]:
    from caig.data.tasks import load_task_mix

    config = profile.pretrain
    deepspeed = deepspeed_config(config)  # a bad DeepSpeed config stops the run before the model loads
    train_examples, _, summary = load_task_mix(tasks_dir)
    check_sharding(config, deepspeed, train_examples, int(os.environ.get("WORLD_SIZE", "1")))
    out.mkdir(parents=True, exist_ok=True)
    world_dir = Path(world_dir or summary["world_dir"])
    model, processor = load_model(model_dir, "float32")
    dataset = TaskDataset(train_examples, world_dir, processor, config.max_length)
    check_limit("pretrain.max_length", config.max_length, dataset.longest(), "the longest task example")
    torch.manual_seed(config.seed)
    evaluate, evaluation = oracle_evaluation(profile, tasks_dir, world_dir, eval_world_dir)
    # Every process evaluates the untrained model, the same on each: one that skipped it would wait in the
    # process group's first collective for as long as the evaluation takes, past the 30-min NCCL timeout
    # for a 7B; only the main process writes (_cached) and evaluates after training.
    before = _cached(out / "eval_before.json", lambda: evaluate(model, processor)) if evaluate else None
    if not is_main_process():
        evaluate = None
    if config.method == "lora":
        model = lora_wrap(model, config)
    training, trainer = fit(model, processor, dataset, config, out)
    model = gathered_model(trainer, model, lambda: _unsharded(model_dir, config))
    if model is None:  # another process of a launched job: rank 0 writes the outputs
        return training
    if config.method == "lora":
        model = model.merge_and_unload()
    save_model(model, processor, out / "model")
    after = evaluate(model, processor) if evaluate else None
    report = {
        "model_in": str(model_dir.resolve()),
        "tasks": str(tasks_dir.resolve()),  # absolute: PCPO reads it from another working directory
        "method": config.method,
        "n_train_examples": len(dataset),
        "tasks_per_kind": summary["tasks"],
        **training,
        "evaluation": evaluation,
        "before": before,
        "after": after,
        "match_rate_gain": after["match_rate"] - before["match_rate"] if evaluate else None,
    }
    (out / "pretrain.json").write_text(json.dumps(report, indent=2))
    _log_outcome(report)
    return report


def _log_outcome(report: dict[str, Any]) -> None:
    """One log line: the oracle evaluation before and after pre-training, or the loss and why none ran."""
    before, after = report["before"], report["after"]
    if after is not None:
        log.info(
            "pre-training done: category accuracy %.3f -> %.3f, match rate %.3f -> %.3f",
            before["category_accuracy"],
            after["category_accuracy"],
            before["match_rate"],
            after["match_rate"],
        )
    else:
        log.info(
            "pre-training done (loss %.4f); evaluation skipped: %s",
            report["train_loss"],
            report["evaluation"]["skipped"],
        )


def _unsharded(model_dir: Path, config: PretrainConfig) -> Any:
    """A fresh copy of the model as trained (LoRA adapters added): the shape the gathered weights load into."""
    model, _ = load_model(model_dir, "float32")
    return lora_wrap(model, config) if config.method == "lora" else model


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of a pre-training report that the run's metrics carry (the evaluation's, or why not)."""
    figures: dict[str, Any] = {
        "train_loss": report["train_loss"],
        "train_seconds": report["train_seconds"],
        "examples": report["n_train_examples"],
    }
    before, after = report["before"], report["after"]
    if before is None or after is None:
        return {**figures, "evaluation_skipped": report["evaluation"]["skipped"]}
    return {
        "match_rate_before": before["match_rate"],
        "match_rate_after": after["match_rate"],
        "category_accuracy_before": before["category_accuracy"],
        "category_accuracy": after["category_accuracy"],
        **figures,
    }


def oracle_evaluation(
    profile: Profile, tasks_dir: Path, world_dir: Path, eval_world_dir: str | Path | None
) -> tuple[Any, dict[str, Any]]:
    """(evaluate(model, processor) or None, what is evaluated or why not).

    The match rate asks the simulated world's oracle (EVALUATION ONLY), so it exists only where the data
    is a simulated world (``world.json``); on imported real logs the oracle is never imported and the
    evaluation is skipped with the reason, for the run's metrics.
    """
    where = Path(eval_world_dir or world_dir)
    if not is_simulated(where):
        reason = (
            f"{where} is not a simulated world (no world.json): the oracle match rate exists only in the "
            "simulator; real data is judged by the MLLM judge and the A.2 review export (caig evaluate)"
        )
        return None, {"skipped": reason}
    from caig.mllm.evaluate_run import evaluation_set, run_evaluation

    world, ids = evaluation_set(tasks_dir, world_dir, eval_world_dir, profile.pretrain.eval_products)
    return (
        lambda model, processor: run_evaluation(model, processor, world, ids, profile),
        {"world": str(world.directory), "products": len(ids)},
    )


def _cached(path: Path, compute: Any) -> dict[str, Any]:
    """The JSON at ``path``, or ``compute()`` written there (the pre-training baseline survives a resume)."""
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    if is_main_process():
        path.write_text(json.dumps(value, indent=2))
    return value
