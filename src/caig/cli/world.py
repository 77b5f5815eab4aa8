"""``caig world``: build and inspect the simulated world."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from caig.cli.options import profile_options, world_option, writable_dir
from caig.profile import Profile

log = logging.getLogger("caig.world")


@click.group()
def world() -> None:
    """The simulated e-commerce world (catalog, creatives, click logs, oracle)."""


@world.command("build")
@profile_options
@click.option("--seed", type=int, default=0, show_default=True, help="World seed; same seed, same world.")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Directory to write the world to."
)
def build(profile: Profile, seed: int, out: Path) -> None:
    """Write catalog, creatives, events/, world.json and contact_sheet.png to OUT."""
    from caig.world.build import build_world

    summary = build_world(profile.world, writable_dir(out), seed=seed, pair_rule=profile.data.pairs)
    click.echo(json.dumps(summary, indent=2))


@world.command("export-release")
@world_option(required=True, help_suffix="Its catalog, creatives, images and LOGGED counts are exported.")
@click.option(
    "--products", "n_products", type=click.IntRange(min=1), default=None, help="Only the first N products."
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Directory for the release files."
)
def export_release(world_dir: Path, n_products: int | None, out: Path) -> None:
    """Write a world's logs in the official CAIG release's format (for `caig data import`): real-format data
    with no simulator behind it."""
    from caig.world.release import export_release as export

    click.echo(json.dumps(export(world_dir, writable_dir(out), n_products), indent=2))
