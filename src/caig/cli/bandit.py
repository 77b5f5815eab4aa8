"""``caig bandit``: the creative selector's offline tools (simulation and the online A/B on the world)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from caig.cli.options import profile_options, runs_option, world_option, writable_dir
from caig.profile import Profile

log = logging.getLogger("caig.bandit")
_DIR = click.Path(path_type=Path, exists=True, file_okay=False)


@click.group()
def bandit() -> None:
    """The creative selector's bandit: simulation and regret."""


@bandit.command("simulate")
@profile_options
@world_option(required=True, oracle=True, help_suffix="Its oracle draws the traffic, e.g. runs/demo/world.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory for simulate.json and regret.png.",
)
@click.option(
    "--priors",
    type=click.Path(path_type=Path),
    default=None,
    help="An RM priors table (rm_priors.parquet); default: empirical-Bayes priors from the logs.",
)
def simulate(profile: Profile, world_dir: Path, out: Path, priors: Path | None) -> None:
    """Cumulative regret of TS with RM priors vs TS without priors vs MABWiser's TS, on the same traffic."""
    from caig.bandit.simulate import simulate_to

    summary = simulate_to(world_dir, profile.bandit.simulate, writable_dir(out), priors)
    click.echo(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "cumulative_regret",
                    "regret_ratio_rm_prior_vs_no_prior",
                    "regret_ratio_mabwiser_vs_no_prior",
                    "goal_met",
                )
            },
            indent=2,
        )
    )
    click.echo(f"wrote {out / 'simulate.json'} and {out / 'regret.png'}")


@bandit.command("ab-test")
@profile_options
@world_option(required=True, oracle=True, help_suffix="Its oracle plays the users (evaluation only).")
@runs_option
@click.option("--pm", "pm_dir", type=_DIR, required=True, help="The prompt model the runs started from.")
@click.option(
    "--rm", "rm_dir", type=_DIR, required=True, help="Reward model: ranks and warm-starts every arm."
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory for online.json.")
@click.option(
    "--all-products",
    is_flag=True,
    help="Test every product of the world (one the runs never saw), not the runs' held-out products.",
)
def ab_test(
    profile: Profile,
    world_dir: Path,
    runs: dict[str, Path],
    pm_dir: Path,
    rm_dir: Path,
    out: Path,
    all_products: bool,
) -> None:
    """Table 2's analogue: the logged creatives alone, plus PCPO-generated, plus DPO-generated ones, served by
    the selector's Thompson sampling on the same simulated traffic (generate.online.*)."""
    import pandas as pd

    from caig.evaluate.online import online_test

    products = pd.read_parquet(world_dir / "catalog.parquet")["product_id"].tolist() if all_products else None
    result = online_test(profile, world_dir, pm_dir, rm_dir, runs, writable_dir(out), products)
    click.echo(json.dumps(result, indent=2))
