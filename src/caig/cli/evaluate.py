"""``caig evaluate``: offline evaluation of PCPO / DPO runs (match rate, true-CTR uplift, plots, report)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from caig.cli.options import profile_options, runs_option, world_option, writable_dir
from caig.profile import Profile


@click.command("evaluate")
@profile_options
@world_option(required=True, oracle=True, help_suffix="Its oracle judges (evaluation only).")
@runs_option
@click.option(
    "--rm",
    "rm_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Reward model for the RM win rate (optional).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Where eval.json and the report go."
)
def evaluate(
    profile: Profile, world_dir: Path, runs: dict[str, Path], rm_dir: Path | None, out: Path
) -> None:
    """Match rate, true-CTR uplift, RM win rate, hacking share and per-category uplift, by round and method."""
    from caig.evaluate.run import run_evaluation

    metrics = run_evaluation(profile, world_dir, runs, rm_dir, writable_dir(out))
    click.echo(json.dumps(metrics, indent=2))
