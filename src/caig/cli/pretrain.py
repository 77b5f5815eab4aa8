"""``caig pretrain``: e-commerce knowledge pre-training of the MLLM on a task mix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from caig.cli.launch import gpus_option
from caig.cli.options import profile_options, world_option, writable_dir
from caig.profile import Profile

_DIR = click.Path(path_type=Path, exists=True, file_okay=False)


def _check(profile: Profile, gpus: int, params: dict[str, Any]) -> None:
    """The pretrain DeepSpeed config and what it cannot shard in the task mix, before any process starts."""
    from caig.data.tasks import load_task_mix
    from caig.mllm.pretrain import check_sharding, deepspeed_config

    deepspeed = deepspeed_config(profile.pretrain)
    if deepspeed is not None and gpus > 1:
        check_sharding(profile.pretrain, deepspeed, load_task_mix(params["tasks_dir"])[0], gpus)


@click.command("pretrain")
@profile_options
@gpus_option(_check)
@click.option("--model", "model_dir", type=_DIR, required=True, help="Model directory (`caig mllm build`).")
@click.option(
    "--tasks", "tasks_dir", type=_DIR, required=True, help="Task-mix directory (`caig mllm tasks`)."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output directory: model/, checkpoints/, pretrain.json; a rerun resumes its last checkpoint.",
)
@world_option(help_suffix="Where the task images are, if the world moved since `caig mllm tasks`.")
@world_option(
    "--eval-world",
    "eval_world_dir",
    oracle=True,
    help_suffix="Evaluate on its products (a held-out seed) instead of the held-out products.",
)
def pretrain(
    profile: Profile,
    model_dir: Path,
    tasks_dir: Path,
    out: Path,
    world_dir: Path | None,
    eval_world_dir: Path | None,
) -> None:
    """Multi-task SFT (full or LoRA); writes OUT/model and OUT/pretrain.json (loss curve, before/after).

    --gpus N runs it once per GPU under torchrun (DDP, or DeepSpeed with pretrain.deepspeed_config)."""
    from caig.distributed import is_main_process
    from caig.mllm.pretrain import headline, run_pretrain

    report = run_pretrain(profile, model_dir, tasks_dir, writable_dir(out), world_dir, eval_world_dir)
    if not is_main_process():  # rank 0 of a --gpus N job reports
        return
    summary = {k: report[k] for k in ("global_step", "resumed_from", "match_rate_gain")}
    click.echo(json.dumps({**summary, **headline(report)}, indent=2))
