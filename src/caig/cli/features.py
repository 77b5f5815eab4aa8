"""``caig features``: the run's Feast store (apply, materialize, online lookups)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import click

from caig.cli.options import profile_options
from caig.profile import Profile

RUN_OPTION = click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
    help="Run directory: the features.* input paths and features.store_dir are relative to it.",
)


@click.group()
def features() -> None:
    """Feast features: product profile, creative CTR windows, RM priors; SQLite or Redis online store."""
    logging.getLogger("feast").setLevel(logging.WARNING)  # its registry logs one line per read


@features.command("apply")
@profile_options
@RUN_OPTION
def apply(profile: Profile, run_dir: Path) -> None:
    """Write the offline sources and feature_store.yaml into the store, and apply feature_repo/."""
    from caig.features.store import apply as apply_repo

    click.echo(json.dumps(apply_repo(profile.features, run_dir), indent=2))


@features.command("materialize")
@profile_options
@RUN_OPTION
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
    default=None,
    help="Load rows up to this time (UTC unless an offset is given); default now.",
)
def materialize(profile: Profile, run_dir: Path, end: datetime | None) -> None:
    """Load new offline rows into the online store (incremental); print where each view started."""
    from caig.features.online import materialize as load
    from caig.features.store import open_store, store_dir

    store = open_store(profile.features, store_dir(profile.features, run_dir))
    end = end if end is None or end.tzinfo else end.replace(tzinfo=UTC)
    click.echo(json.dumps({"materialized_from": load(store, end)}, indent=2))


@features.command("get")
@profile_options
@RUN_OPTION
@click.option("--product", "product_id", required=True, help="Product id, e.g. P00003.")
def get(profile: Profile, run_dir: Path, product_id: str) -> None:
    """Print the online features of a product and of each of its creatives as JSON."""
    from caig.features.online import product_features
    from caig.features.store import open_store, store_dir

    store = open_store(profile.features, store_dir(profile.features, run_dir))
    click.echo(json.dumps(product_features(store, product_id), indent=2))
