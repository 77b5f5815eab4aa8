"""``caig generate``: new creatives for a catalog, written by the PM, ranked by the RM, registered."""

from __future__ import annotations

import json
from pathlib import Path

import click

from caig.cli.options import profile_options, world_option
from caig.profile import Profile

_DIR = click.Path(path_type=Path, exists=True, file_okay=False)


@click.command("generate")
@profile_options
@world_option("--data", "data_dir", required=True, help_suffix="Generated creatives are registered in it.")
@click.option("--pm", "pm_dir", type=_DIR, required=True, help="Prompt model: a `caig pretrain` output.")
@click.option("--rm", "rm_dir", type=_DIR, required=True, help="Reward model: a `caig rm train` output.")
@click.option(
    "--adapter",
    type=_DIR,
    default=None,
    help="A LoRA adapter to merge into the PM, or a `caig pcpo` run (its last round's adapter).",
)
def generate(profile: Profile, data_dir: Path, pm_dir: Path, rm_dir: Path, adapter: Path | None) -> None:
    """Write generate.candidates descriptions per chosen product (generate.products), render and rank them,
    and register the best generate.keep as creatives of DATA (idempotent: ids come from the content)."""
    from caig.generate.run import generate_creatives

    click.echo(json.dumps(generate_creatives(profile, data_dir, pm_dir, rm_dir, adapter), indent=2))
