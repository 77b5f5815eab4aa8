"""Registration of generated creatives in a data directory: all of a run's rows, or none of them.

A generated creative becomes a row of ``creatives.parquet`` (what every stage and the selector read) with its
image under ``images/generated/``, and a row of ``generated.parquet``: its provenance (PM and RM, description,
seed, render facts), its RM score and its Beta prior. Ids come from the content (product, description, seed,
PM, renderer), so a re-run with the same inputs adds nothing twice. Everything is written to a staging
folder first and moved in at the end: a failure before that leaves the directory as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from caig.render.label import save_png

GENERATED = "generated.parquet"
IMAGE_FOLDER = Path("images/generated")
PROVENANCE_COLUMNS = [
    "creative_id",
    "product_id",
    "description",
    "image_path",
    "seed",
    "pm",
    "rm",
    "render",
    "rm_score",
    "win_rate",
    "prior_alpha",
    "prior_beta",
    "created_at",
]


def content_id(product_id: str, description: str, seed: int, pm: str, renderer: str) -> str:
    """A generated creative's id: the same inputs give the same id (``G`` + 15 hex digits)."""
    digest = hashlib.sha1(json.dumps([product_id, description, seed, pm, renderer]).encode()).hexdigest()
    return f"G{digest[:15]}"


def register(
    data_dir: Path, rows: Sequence[dict[str, Any]], images: dict[str, Image.Image]
) -> dict[str, int]:
    """Add ``rows`` (``PROVENANCE_COLUMNS`` but ``image_path``) and their ``images`` (by creative id) to the
    data directory; rows whose id is already registered are skipped. Returns the counts."""
    data_dir = Path(data_dir)
    creatives = pd.read_parquet(data_dir / "creatives.parquet")
    known = set(creatives["creative_id"])
    new = [dict(r) for r in rows if r["creative_id"] not in known]
    if not new:
        return {"registered": 0, "already_registered": len(rows)}
    staging = data_dir / f".generate-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for row in new:
            row["image_path"] = (IMAGE_FOLDER / f"{row['creative_id']}.png").as_posix()
            (staging / IMAGE_FOLDER).mkdir(parents=True, exist_ok=True)
            save_png(images[row["creative_id"]], staging / row["image_path"])
        added = pd.DataFrame(new)
        table = pd.concat([creatives, _creative_rows(added, creatives.columns)], ignore_index=True)
        table.to_parquet(staging / "creatives.parquet", index=False)
        provenance = _provenance(data_dir, added)
        provenance.to_parquet(staging / GENERATED, index=False)
        _move_in(staging, data_dir, [r["image_path"] for r in new])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"registered": len(new), "already_registered": len(rows) - len(new)}


def _creative_rows(added: pd.DataFrame, columns: pd.Index) -> pd.DataFrame:
    """The new creatives in the creatives table's columns (the description is the generated one)."""
    return added.reindex(columns=list(columns))


def _provenance(data_dir: Path, added: pd.DataFrame) -> pd.DataFrame:
    frame = added.reindex(columns=PROVENANCE_COLUMNS)
    path = data_dir / GENERATED
    return pd.concat([pd.read_parquet(path), frame], ignore_index=True) if path.is_file() else frame


def _move_in(staging: Path, data_dir: Path, image_paths: Sequence[str]) -> None:
    """Images first (unreferenced until the tables move), then the provenance, then the creatives table:
    a creative counts as registered once it is in ``creatives.parquet``, the last file replaced."""
    (data_dir / IMAGE_FOLDER).mkdir(parents=True, exist_ok=True)
    for path in image_paths:
        os.replace(staging / path, data_dir / path)
    os.replace(staging / GENERATED, data_dir / GENERATED)
    os.replace(staging / "creatives.parquet", data_dir / "creatives.parquet")
