"""``caig world``: build and inspect the simulated world."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from caig.cli.options import profile_options, writable_dir
from caig.profile import Profile

log = logging.getLogger("caig.world")


@click.group()
def world() -> None:
    """The simulated e-commerce world (catalog, creatives, click logs, oracle)."""


@world.command("build")
@profile_options
@click.option("--seed", type=int, default=0, show_default=True, help="World seed; same seed, same world.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to write the world to.")
def build(profile: Profile, seed: int, out: Path) -> None:
    """Write catalog, creatives, events/, world.json and contact_sheet.png to OUT."""
    from caig.world.build import build_world

    summary = build_world(profile.world, writable_dir(out), seed=seed, pair_rule=profile.data.pairs)
    click.echo(json.dumps(summary, indent=2))
