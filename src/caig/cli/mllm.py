"""``caig mllm``: build the multimodal LLM of a preset, and write the pre-training task mix."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from caig.cli.options import profile_options, world_option, writable_dir
from caig.profile import Profile

log = logging.getLogger("caig.mllm")


@click.group()
def mllm() -> None:
    """The multimodal LLM (LLaVA-NeXT): presets and the pre-training task mix."""


@mllm.command("build")
@profile_options
@click.option(
    "--preset",
    type=click.Choice(["tiny", "llava-v1.6-7b"]),
    default=None,
    help="Model preset; default: the profile's mllm.preset.",
)
@world_option(help_suffix="Its titles and descriptions join the tiny tokenizer's corpus.")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Directory to save model + processor."
)
def build(profile: Profile, preset: str | None, world_dir: Path | None, out: Path) -> None:
    """Build (tiny) or load (llava-v1.6-7b from mllm.model_path) the model and save it to OUT."""
    from caig.mllm.build import build_or_load, save_model

    config = profile.mllm
    if preset:
        config.preset = preset  # type: ignore[assignment]
    model, processor = build_or_load(config, world_dir)
    save_model(model, processor, writable_dir(out))
    summary = {
        "preset": config.preset,
        "out": str(out),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(processor.tokenizer),
    }
    click.echo(json.dumps(summary, indent=2))


@mllm.command("tasks")
@profile_options
@world_option(required=True, help_suffix="Its events/ give the logged CTRs unless --stats is given.")
@click.option(
    "--stats",
    "stats_path",
    type=click.Path(path_type=Path),
    default=None,
    help="creative_stats.parquet of `caig data ingest` (default: read the world's events/).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Directory to write the task mix to."
)
def tasks(profile: Profile, world_dir: Path, stats_path: Path | None, out: Path) -> None:
    """Write the pre-training task mix (paper Table 3 analogue) of a world to OUT."""
    from caig.data.tasks import build_task_mix

    summary = build_task_mix(
        world_dir, writable_dir(out), profile.pretrain.tasks, profile.mllm.instruct_attributes, stats_path
    )
    click.echo(json.dumps({k: summary[k] for k in ("n_products", "n_examples", "tasks", "groups")}, indent=2))
