"""``caig evaluate``: offline evaluation of PCPO / DPO runs (match rate, true-CTR uplift, plots, report)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from caig.cli.options import profile_options, world_option, writable_dir
from caig.errors import UserError
from caig.profile import Profile


def _runs(values: tuple[str, ...]) -> dict[str, Path]:
    runs = {}
    for value in values:
        method, sep, path = value.partition("=")
        if not sep or not method or not path:
            raise UserError(f"--run {value!r}: write it as METHOD=DIR, e.g. --run pcpo=runs/demo/pcpo")
        runs[method] = Path(path)
    return runs


@click.command("evaluate")
@profile_options
@world_option(required=True, oracle=True, help_suffix="Its oracle judges (evaluation only).")
@click.option(
    "--run",
    "run_values",
    multiple=True,
    required=True,
    metavar="METHOD=DIR",
    help="A `caig pcpo --out` directory, named by its method (repeatable).",
)
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
    profile: Profile, world_dir: Path, run_values: tuple[str, ...], rm_dir: Path | None, out: Path
) -> None:
    """Match rate, true-CTR uplift, RM win rate, hacking share and per-category uplift, by round and method."""
    from caig.evaluate.run import run_evaluation

    metrics = run_evaluation(profile, world_dir, _runs(run_values), rm_dir, writable_dir(out))
    click.echo(json.dumps(metrics, indent=2))
