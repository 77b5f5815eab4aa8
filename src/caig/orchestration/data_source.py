"""A run's data from a location instead of the simulated world (the pipelines' ``data`` parameter).

The training and refresh pipelines read one data directory in the world's layout: ``catalog.parquet``,
``creatives.parquet``, ``events/**/*.parquet`` and the images the tables point at (paths relative to the
directory). The pipelines build the simulated world when ``data`` is empty, unless the profile says never
to (``orchestration.simulated_world: false``, the production profile): then an empty ``data`` is an error
naming the parameter. Otherwise this module copies
the directory at ``data`` (a path the step can read: a mounted volume or a bucket mounted by gcsfuse /
s3fs) into the step's output, after checking that the layout is complete, so that later steps read an
immutable, versioned copy.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from caig.errors import UserError

log = logging.getLogger("caig.orchestration")

REQUIRED = ("catalog.parquet", "creatives.parquet")


def check_data_dir(source: Path) -> list[Path]:
    """The event files of the data directory ``source``; a UserError naming what is missing."""
    if not source.is_dir():
        raise UserError(
            f"data location {source} is not a directory; pass a folder with catalog.parquet, "
            "creatives.parquet and events/ (mounted into the step), or leave 'data' empty for the world"
        )
    missing = [name for name in REQUIRED if not (source / name).is_file()]
    if missing:
        raise UserError(
            f"data location {source} lacks {', '.join(missing)}; export them in the world's layout"
        )
    events = sorted((source / "events").rglob("*.parquet"))
    if not events:
        raise UserError(f"data location {source} has no events/**/*.parquet click logs")
    check_images(source)
    return events


def check_images(source: Path) -> None:
    """A ``UserError`` naming the first missing product or creative image (paths relative to ``source``):
    every later step reads them, and a missing one would otherwise surface hours into training."""
    for table in REQUIRED:
        paths = pq.read_table(source / table, columns=["image_path"]).column("image_path").to_pylist()
        missing = [p for p in paths if not p or not (source / p).is_file()]
        if missing:
            raise UserError(
                f"data location {source}: {len(missing)} of {len(paths)} image_path(s) of {table} name no file "
                f"(e.g. {missing[0]!r}); put the images in the directory, at paths relative to it "
                "(`caig data import` copies them there)"
            )


def stage_data(source: str | Path, out: str | Path) -> dict[str, Any]:
    """Copy the data directory ``source`` to ``out``; return its sizes (and world.json's figures, if any)."""
    source, out = Path(source), Path(out)
    events = check_data_dir(source)
    shutil.copytree(source, out, dirs_exist_ok=True)
    summary: dict[str, Any] = {
        "n_products": pq.read_metadata(out / "catalog.parquet").num_rows,
        "n_creatives": pq.read_metadata(out / "creatives.parquet").num_rows,
        "n_events": sum(pq.read_metadata(f).num_rows for f in events),
        "n_event_files": len(events),
    }
    if (out / "world.json").is_file():  # a saved simulated world: keep its ground-truth figures
        world = json.loads((out / "world.json").read_text())
        summary.update({k: world[k] for k in ("n_clicks", "n_pairs", "bayes_pair_accuracy") if k in world})
    log.info("staged data from %s: %s", source, summary)
    return summary


def check_world_allowed(profile: Any) -> None:
    """A UserError when the profile never builds a simulated world (production reads real data only)."""
    if not profile.orchestration.simulated_world:
        raise UserError(
            f"pipeline parameter 'data' is empty, and profile '{profile.name}' never builds a simulated world "
            "(orchestration.simulated_world: false); pass data=<a data directory in the world's layout, "
            "e.g. /mnt/data/current on the data volume>"
        )


WORLD_FIGURES = ("n_products", "n_creatives", "n_events", "n_clicks", "n_pairs", "bayes_pair_accuracy")


def run_data(profile: Any, seed: int, data: str, out: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's data in ``out``: the directory at ``data`` copied (``stage_data``), or, when ``data`` is empty,
    the simulated world of ``seed`` built. Returns (figures, what the data is: ``source`` or ``seed``).

    The simulator (and its oracle) is imported only to build a world, never for imported data.
    """
    if data:
        return stage_data(data, out), {"source": data}
    check_world_allowed(profile)
    from caig.world.build import build_world

    built = build_world(profile.world, Path(out), seed=seed, pair_rule=profile.data.pairs)
    return {k: built[k] for k in WORLD_FIGURES}, {"seed": seed}
