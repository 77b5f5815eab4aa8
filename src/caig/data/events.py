"""Impression/click logs: one row per impression, written as parquet partitioned by day.

Schema (the contract of every importer, of the simulated world and of ingestion): ``event_id`` string
(unique), ``ts`` timestamp (UTC), ``product_id``, ``creative_id``, ``segment`` strings, ``clicked`` bool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

EVENT_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("product_id", pa.string()),
    ("creative_id", pa.string()),
    ("segment", pa.string()),
    ("clicked", pa.bool_()),
])


def write_events(events: pd.DataFrame, directory: Path) -> list[Path]:
    """Write one parquet file per UTC day under ``directory/YYYY-MM-DD/``; return the files."""
    directory.mkdir(parents=True, exist_ok=True)
    days = events["ts"].dt.tz_convert(None).to_numpy().astype("datetime64[D]")  # UTC calendar days
    paths = []
    for day, part in events.groupby(days, sort=True):
        folder = directory / str(np.datetime64(day, "D"))
        folder.mkdir(exist_ok=True)
        path = folder / "part-00000.parquet"
        table = pa.Table.from_pandas(part.reset_index(drop=True), schema=EVENT_SCHEMA, preserve_index=False)
        pq.write_table(table, path)
        paths.append(path)
    return paths


def read_events(directory: Path) -> pd.DataFrame:
    """All events under ``directory`` (every ``*.parquet`` file, any depth), in the event schema."""
    files = sorted(Path(directory).rglob("*.parquet"))
    tables = [pq.read_table(f, schema=EVENT_SCHEMA) for f in files]
    return pa.concat_tables(tables).to_pandas() if tables else EVENT_SCHEMA.empty_table().to_pandas()
