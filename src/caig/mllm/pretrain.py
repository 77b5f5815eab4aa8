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
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

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
    deepspeed = None
    if config.deepspeed_config:
        path = Path(config.deepspeed_config)
        if not path.is_file():
            raise UserError(
                f"pretrain.deepspeed_config {path}: no such file; use configs/deepspeed_zero2.json or ''"
            )
        deepspeed = str(path)
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
        deepspeed=deepspeed,
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


def single_process_environment() -> None:
    """The rendezvous variables of a one-process job, where no launcher (torchrun, deepspeed) set them.

    A pipeline step on one GPU runs as a plain process; DeepSpeed then looks for an MPI launcher (and fails
    without mpi4py) unless RANK, WORLD_SIZE and the master address are set. A launcher's values win.
    """
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    with socket.socket() as probe:  # a free loopback port for the single-member process group
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"}.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(port))


def train(
    model: Any,
    processor: Any,
    dataset: TaskDataset,
    config: PretrainConfig,
    out: Path,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Run (or resume) the SFT; return the loss curve, steps and the checkpoint resumed from."""
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
    return {
        "resumed_from": Path(last).name if last else None,
        "global_step": trainer.state.global_step,
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_loss": result.training_loss,
        "loss_curve": curve,
        "distributed": _distributed(trainer),
    }


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
    out.mkdir(parents=True, exist_ok=True)
    train_examples, _, summary = load_task_mix(tasks_dir)
    world_dir = Path(world_dir or summary["world_dir"])
    model, processor = load_model(model_dir, "float32")
    dataset = TaskDataset(train_examples, world_dir, processor, config.max_length)
    check_limit("pretrain.max_length", config.max_length, dataset.longest(), "the longest task example")
    torch.manual_seed(config.seed)
    evaluate, evaluation = oracle_evaluation(profile, tasks_dir, world_dir, eval_world_dir)
    before = _cached(out / "eval_before.json", lambda: evaluate(model, processor)) if evaluate else None
    if config.method == "lora":
        model = lora_wrap(model, config)
    training = train(model, processor, dataset, config, out)
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
    if evaluate:
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
            training["train_loss"],
            evaluation["skipped"],
        )
    return report


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
    path.write_text(json.dumps(value, indent=2))
    return value
