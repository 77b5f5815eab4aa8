"""Reading the small input tables of the data stage (creatives, stats) with clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from caig.errors import UserError

STATS_COLUMNS = ["creative_id", "product_id", "date", "segment", "impressions", "clicks"]


def read_table(path: Path, required: list[str], option: str) -> pd.DataFrame:
    """A parquet file as a DataFrame, checking that it exists, parses and has the ``required`` columns."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{option} {path}: no such file; pass an existing parquet file")
    try:
        frame = pd.read_parquet(path)
    except (OSError, pa.ArrowException) as err:
        raise UserError(f"{option} {path}: not a readable parquet file ({type(err).__name__})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise UserError(
            f"{option} {path}: missing column(s) {', '.join(missing)}; it has {', '.join(frame.columns)}"
        )
    return frame


def read_creatives(path: Path, need_images: bool = False) -> pd.DataFrame:
    """The creatives table (``creative_id, product_id`` and, if ``need_images``, ``image_path``)."""
    required = ["creative_id", "product_id"] + (["image_path"] if need_images else [])
    frame = read_table(path, required, "--creatives")
    if frame["creative_id"].isna().any():
        raise UserError(
            f"--creatives {path}: {int(frame['creative_id'].isna().sum())} rows have no creative_id"
        )
    dupes = frame["creative_id"].duplicated()
    if dupes.any():
        raise UserError(
            f"--creatives {path}: creative_id {frame.loc[dupes, 'creative_id'].iloc[0]} appears twice"
        )
    return frame


def read_stats(stats_dir: Path) -> pd.DataFrame:
    """``DS/creative_stats.parquet`` of a stats directory written by ``caig data ingest``."""
    path = Path(stats_dir) / "creative_stats.parquet"
    if not path.is_file():
        raise UserError(
            f"--stats {stats_dir}: no creative_stats.parquet; run `caig data ingest --out {stats_dir}`"
        )
    return read_table(path, STATS_COLUMNS, "--stats")
