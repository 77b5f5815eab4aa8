"""``caig rm``: train, evaluate and ablate the pairwise CTR reward model (paper section 3.3, Table 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from caig.cli.launch import gpus_option
from caig.cli.options import profile_options, world_option, writable_dir
from caig.orchestration.config import PRIOR_CALIBRATION_OBJECTIVES
from caig.profile import Profile

_DIR = click.Path(path_type=Path, exists=True, file_okay=False)
_PAIRS = click.Path(path_type=Path, exists=True)


@click.group()
def rm() -> None:
    """The pairwise CTR reward model: train, eval, ablation."""


def _check(profile: Profile, gpus: int, params: dict[str, Any]) -> None:
    """The RM's DeepSpeed config (and what cannot shard under ZeRO-3), checked before any process starts."""
    from caig.reward.curriculum.jobs import check_deepspeed

    del gpus, params  # the RM's refusals depend on the profile only
    check_deepspeed(profile.reward, profile.curriculum)


@rm.command("train")
@profile_options
@gpus_option(_check)
@click.option(
    "--pairs", type=_PAIRS, required=True, help="Pairs parquet, or a pairs directory (train.parquet)."
)
@click.option(
    "--model",
    "model_dir",
    type=_DIR,
    required=True,
    help="Starting model: `caig pretrain` output (or `caig mllm build` for the bare base model).",
)
@world_option(dest="data_dir", required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to save the RM to.")
def train(profile: Profile, pairs: Path, model_dir: Path, data_dir: Path, out: Path) -> None:
    """Fine-tune the RM on PAIRS (CE + 0.5 MSE, Eq. 7) and save it to OUT.

    The profile's curriculum (off in the paper) trains the RM first. --gpus N runs it once per GPU under
    torchrun (DDP, or DeepSpeed with reward.deepspeed_config)."""
    from caig.reward.curriculum.jobs import train_rm

    out = writable_dir(out)
    summary = train_rm(model_dir, pairs, data_dir, profile.reward, profile.curriculum, out)
    stages = [{k: v for k, v in stage.items() if k != "loss_curve"} for stage in summary["stages"]]
    shown = {k: v for k, v in summary.items() if k != "loss_curve"}
    click.echo(json.dumps({**shown, "stages": stages}, indent=2))


@rm.command("eval")
@profile_options
@click.option("--rm", "rm_dir", type=_DIR, required=True, help="RM directory written by `caig rm train`.")
@click.option(
    "--pairs", type=_PAIRS, required=True, help="Test pairs parquet, or a pairs directory (test.parquet)."
)
@world_option(dest="data_dir", required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory for rm_eval.json.")
def evaluate(profile: Profile, rm_dir: Path, pairs: Path, data_dir: Path, out: Path) -> None:
    """Pair accuracy in both orders, one order, swap disagreement, ceiling and skill -> OUT/rm_eval.json."""
    from caig.reward.evaluate import evaluate_rm

    del profile  # the RM carries the config it was trained with (rm.json)
    click.echo(json.dumps(evaluate_rm(rm_dir, pairs, data_dir, writable_dir(out)), indent=2))


@rm.command("ablation")
@profile_options
@click.option(
    "--train-pairs", type=_PAIRS, required=True, help="Training pairs (parquet or pairs directory)."
)
@click.option("--test-pairs", type=_PAIRS, required=True, help="Test pairs (parquet or pairs directory).")
@click.option("--base", "base_dir", type=_DIR, required=True, help="The bare base model (`caig mllm build`).")
@click.option("--model", "model_dir", type=_DIR, required=True, help="The e-commerce pre-trained model.")
@world_option(dest="data_dir", required=True, help_suffix="The training pairs' data.")
@world_option(
    "--test-world",
    "test_dir",
    help_suffix="The test pairs' data when they come from another world (a held-out seed); default: --world.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Directory for ablation.json/.md."
)
def ablation(
    profile: Profile,
    train_pairs: Path,
    test_pairs: Path,
    base_dir: Path,
    model_dir: Path,
    data_dir: Path,
    test_dir: Path | None,
    out: Path,
) -> None:
    """Table 1: train reward.ablation_rows for each of reward.ablation_seeds; write OUT/ablation.json and .md."""
    from caig.reward.curriculum.jobs import rm_ablation

    out = writable_dir(out)
    table = rm_ablation(
        profile.reward,
        profile.curriculum,
        base_dir,
        model_dir,
        train_pairs,
        test_pairs,
        data_dir,
        out,
        test_dir,
    )
    click.echo((out / "ablation.md").read_text())
    click.echo(
        json.dumps(
            {
                k: table[k]
                for k in ("full_minus_base", "max_seed_spread", "full_beats_base_beyond_spread", "ceiling")
            },
            indent=2,
        )
    )


@rm.command("priors")
@profile_options
@click.option("--rm", "rm_dir", type=_DIR, required=True, help="RM directory written by `caig rm train`.")
@world_option(
    dest="data_dir", required=True, help_suffix="Its creatives are ranked; its events give product CTRs."
)
@click.option(
    "--calibration",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="prior_calibration.json from `caig rm calibrate-priors`: its temperature and strength replace "
    "orchestration.refresh's.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Directory for rm_priors.parquet."
)
def priors(profile: Profile, rm_dir: Path, data_dir: Path, calibration: Path | None, out: Path) -> None:
    """Rank every product's creatives with the RM: OUT/rm_priors.parquet (the selector's Beta priors, and
    `caig bandit simulate --priors`) and OUT/ranking.parquet; temperature and strength from
    orchestration.refresh or --calibration."""
    from datetime import UTC, datetime

    from caig.orchestration.rm_priors import rank_into_priors

    out = writable_dir(out)
    config = profile.orchestration.refresh
    counts = rank_into_priors(rm_dir, data_dir, out, config, datetime.now(UTC), calibration=calibration)
    click.echo(json.dumps(counts, indent=2))


@rm.command("calibrate-priors")
@profile_options
@click.option("--rm", "rm_dir", type=_DIR, required=True, help="RM directory written by `caig rm train`.")
@world_option(
    dest="data_dir",
    required=True,
    help_suffix="Logs the RM did not train on: its creatives are ranked and their clicks fit the priors.",
)
@click.option(
    "--objective",
    type=click.Choice(PRIOR_CALIBRATION_OBJECTIVES),
    default="regret",
    show_default=True,
    help="regret: the grid point losing the fewest clicks on a replay of the logs; likelihood: the "
    "Beta-binomial fit of the logged CTRs. Both are written.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Directory for prior_calibration.json."
)
def calibrate_priors(profile: Profile, rm_dir: Path, data_dir: Path, objective: str, out: Path) -> None:
    """Fit the RM priors' temperature and strength on held-out logs, without the oracle:
    OUT/prior_calibration.json (pass it to `caig rm priors --calibration`) and OUT/ranking.parquet."""
    from datetime import UTC, datetime

    from caig.orchestration.prior_calibration import write_prior_calibration

    fitted = write_prior_calibration(
        rm_dir,
        data_dir,
        writable_dir(out),
        profile.orchestration.refresh,
        profile.bandit.simulate,
        objective,
        datetime.now(UTC),
    )
    grid = fitted.pop("regret")["grid"]
    click.echo(json.dumps({**fitted, "regret_grid_points": len(grid)}, indent=2))
