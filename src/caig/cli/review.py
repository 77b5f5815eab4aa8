"""``caig review``: match rate without an oracle (paper A.2): export a review page, import its answers, and
an automatic MLLM judge with its measured agreement with the world's oracle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from caig.cli.options import profile_options, runs_option, world_option, writable_dir
from caig.errors import UserError
from caig.profile import Profile

_DIR = click.Path(path_type=Path, exists=True, file_okay=False)


def _rounds(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        return sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise UserError(f"--rounds {value!r}: write round numbers separated by commas, e.g. 0,4") from None


@click.group("review")
def review() -> None:
    """Human review of match rate (paper A.2) and an automatic MLLM judge."""


@review.command("export")
@profile_options
@runs_option
@click.option(
    "--data",
    "data_dir",
    type=_DIR,
    required=True,
    help="Data directory with catalog.parquet and the product images (a world or imported data).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Batch directory to write.")
@click.option("--batch-id", default="b1", show_default=True, help="Names the batch and its answer files.")
@click.option("--per-cell", type=int, default=50, show_default=True, help="Products per method and round.")
@click.option("--rounds", default=None, help="Rounds to review, e.g. 0,4 (default: all).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the product draw and order.")
def export(
    profile: Profile,
    runs: dict[str, Path],
    data_dir: Path,
    out: Path,
    batch_id: str,
    per_cell: int,
    rounds: str | None,
    seed: int,
) -> None:
    """Write OUT/review.html (blind, self-contained; saves the answers as JSON), OUT/batch.json and OUT/ads/."""
    from caig.evaluate.review_export import export_batch
    from caig.render.factory import make_renderer

    summary = export_batch(
        make_renderer(profile.render),
        runs,
        data_dir,
        writable_dir(out),
        batch_id,
        per_cell=per_cell,
        rounds=_rounds(rounds),
        seed=seed,
    )
    click.echo(json.dumps(summary, indent=2))


@review.command("import")
@profile_options
@click.option(
    "--batch", "batch_dir", type=_DIR, required=True, help="The `caig review export --out` directory."
)
@click.option(
    "--answers",
    "answer_files",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    multiple=True,
    required=True,
    help="An answers file saved by the review page (repeatable: one per reviewer).",
)
@click.option(
    "--skip-rejected",
    is_flag=True,
    help="Import the valid answers even if some are rejected; the rejections are listed in the result.",
)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="JSON file for the result."
)
def import_command(
    profile: Profile, batch_dir: Path, answer_files: tuple[Path, ...], skip_rejected: bool, out: Path | None
) -> None:
    """Match rate with a 95% Wilson interval and the count of each mismatch kind, per method and round."""
    from caig.evaluate.review_aggregate import import_batch, markdown

    result = import_batch(batch_dir, list(answer_files), skip_rejected=skip_rejected)
    if out is not None:
        writable_dir(out.parent)
        out.write_text(json.dumps(result, indent=2))
    click.echo(markdown(result), nl=False)
    click.echo(
        f"{result['n_answers']} answers from {len(result['reviewers'])} reviewer(s): "
        f"{result['n_accepted']} accepted, {result['n_rejected']} rejected",
        err=True,
    )
    for r in result["rejected"]:
        click.echo(f"rejected: {r['file']}: item {r['item_id']!r}: {r['reason']}", err=True)


@review.command("judge")
@profile_options
@click.option(
    "--model",
    "model_dir",
    type=_DIR,
    required=True,
    help="The MLLM: a `caig pretrain` output (DIR/model) or a model directory.",
)
@world_option(
    oracle=True,
    help_suffix="Measure agreement with its oracle on its creatives (evaluation only; use a held-out seed).",
)
@click.option(
    "--batch",
    "batch_dir",
    type=_DIR,
    default=None,
    help="Answer this review batch instead (no oracle needed).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output directory.")
@click.option(
    "--mode",
    type=click.Choice(["choice", "generate"]),
    default="choice",
    show_default=True,
    help="choice: likeliest of the four answers; generate: free text, parsed.",
)
@click.option("--limit", type=int, default=200, show_default=True, help="Creatives to judge (--world).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the creatives drawn (--world).")
def judge(
    profile: Profile,
    model_dir: Path,
    world_dir: Path | None,
    batch_dir: Path | None,
    out: Path,
    mode: str,
    limit: int,
    seed: int,
) -> None:
    """Ask the MLLM the A.2 question: --world writes OUT/judge.json (agreement with the oracle), --batch writes
    an answers file for `caig review import`."""
    from caig.evaluate.mllm_judge import JudgeSettings, judge_batch, run_world_judge

    if (world_dir is None) == (batch_dir is None):
        raise UserError("pass exactly one of --world (agreement with the oracle) or --batch (answer a batch)")
    settings = JudgeSettings(mode=mode)  # type: ignore[arg-type]
    dtype = profile.mllm.dtype
    if world_dir is not None:
        report = run_world_judge(model_dir, world_dir, writable_dir(out), settings, limit, seed, dtype)
        summary = {k: v for k, v in report["agreement"].items() if k != "confusion"}
        click.echo(json.dumps(summary | {"judge_answers": report["judge_answers"]}, indent=2))
    else:
        click.echo(
            json.dumps(judge_batch(model_dir, batch_dir, writable_dir(out), settings, dtype), indent=2)
        )
