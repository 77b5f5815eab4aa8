"""``caig pcpo``: preference optimization of the prompt model with the reward model (Algorithm 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from caig.cli.launch import gpus_option
from caig.cli.options import profile_options, world_option, writable_dir
from caig.distributed import is_main_process
from caig.pcpo.config import METHODS
from caig.profile import Profile


def _check(profile: Profile, gpus: int, params: dict[str, Any]) -> None:
    """The PCPO DeepSpeed config, before any process starts."""
    from caig.pcpo.engine import pcpo_deepspeed_config

    pcpo_deepspeed_config(profile.pcpo)


@click.command("pcpo")
@profile_options
@gpus_option(_check)
@click.option(
    "--pm",
    "pm_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="Pre-trained prompt model: a `caig pretrain` output directory.",
)
@click.option(
    "--rm",
    "rm_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="Trained reward model: a `caig rm train` output directory.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Run directory (resumed if present)."
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default=None,
    help="pcpo (default from the profile), dpo (baseline), or an ablation.",
)
@click.option(
    "--tasks",
    "tasks_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Task-mix directory whose product split to use (default: the one the PM was trained on).",
)
@world_option(help_suffix="Where the task images are, if the world moved since `caig mllm tasks`.")
@world_option(
    "--eval-world",
    "eval_world_dir",
    help_suffix="Write held-out descriptions for its products (a held-out world seed).",
)
def pcpo(
    profile: Profile,
    pm_dir: Path,
    rm_dir: Path,
    out: Path,
    method: str | None,
    tasks_dir: Path | None,
    world_dir: Path | None,
    eval_world_dir: Path | None,
) -> None:
    """Run Algorithm 1's rounds; write OUT/round-NN/ (adapter, round.json, heldout.parquet) and OUT/pcpo.json."""
    from caig.pcpo.loop import run_pcpo

    summary = run_pcpo(
        profile,
        pm_dir,
        rm_dir,
        writable_dir(out),
        method=method,
        tasks_dir=tasks_dir,
        eval_world_dir=eval_world_dir,
        world_dir=world_dir,
    )
    if not is_main_process():
        return  # the main process of a --gpus job reports
    last = summary["rounds"][-1] if summary["rounds"] else {}
    click.echo(
        json.dumps({"method": summary["method"], "rounds": len(summary["rounds"]), "last": last}, indent=2)
    )
