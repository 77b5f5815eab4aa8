"""``caig run``: the whole training pipeline on one machine, through the KFP local runner."""

from __future__ import annotations

from pathlib import Path

import click

from caig.cli.options import profile_options, writable_dir
from caig.errors import UserError
from caig.profile import Profile


@click.command("run")
@profile_options
@click.option("--local", "local", is_flag=True, required=True, help="Run on this machine (required for now).")
@click.option("--seed", type=int, default=0, show_default=True, help="World seed.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True,
              help="Run directory: metrics.json, report.html and every step's outputs.")
def run(profile: Profile, local: bool, seed: int, out: Path) -> None:
    """Run the caig-training KFP pipeline locally; write OUT/metrics.json and OUT/report.html.

    Every step runs as a subprocess of this environment (KFP SubprocessRunner); OUT/world links to the
    world the run built, OUT/timings.json has the seconds of each step.
    """
    from caig.demo import run_demo

    if not local:
        raise UserError("only --local runs are supported by `caig run`; use `caig submit` for a cluster")
    metrics = run_demo(profile, writable_dir(out), seed=seed)
    click.echo(f"wrote {out / 'metrics.json'} ({len(metrics)} metrics) and {out / 'report.html'}")


@click.command("smoke-production")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("runs/smoke-production"),
    show_default=True,
    help="Run directory: fixture/, data/, models/, training/, refresh/ and metrics.json.",
)
def smoke_production(out: Path) -> None:
    """Run caig-training and caig-refresh locally with the production profile at CPU cost
    (configs/smoke-production.yaml: small random models of the production architectures) on a small release
    imported with `caig data import` (no simulator); write OUT/metrics.json."""
    from caig.smoke import run_production_smoke

    summary = run_production_smoke(writable_dir(out))
    seconds = sum(sum(s.values()) for s in summary["seconds"].values())
    click.echo(f"wrote {out / 'metrics.json'}: both pipelines ran on imported data in {seconds:.0f} s of steps")
