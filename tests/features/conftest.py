"""Fixtures of the features tests: run directories holding a world's catalog, creatives and daily stats."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from caig.data.config import IngestConfig
from caig.data.ingest import ingest_events
from caig.features.priors import write_rm_priors


@pytest.fixture(scope="session")
def feature_run_dir(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path) -> Path:
    """A run directory with the small world's catalog and creatives and its ingested daily stats.

    Layout of the local profile: world/{catalog,creatives}.parquet and data/creative_stats.parquet (from
    the real `caig data ingest` library call). Read-only for tests; stores go in each test's tmp_path.
    """
    run = tmp_path_factory.mktemp("features-run")
    (run / "world").mkdir()
    for name in ("catalog.parquet", "creatives.parquet"):
        shutil.copy(small_world_dir / name, run / "world" / name)
    creatives = pd.read_parquet(run / "world" / "creatives.parquet")
    report = ingest_events(
        small_world_dir / "events",
        run / "data",
        IngestConfig(),
        creatives=creatives,
        as_of=datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert report.rows_quarantined == 0 and report.rows_valid > 0
    return run


@pytest.fixture(scope="session")
def handmade_run(tmp_path_factory: pytest.TempPathFactory):
    """Write a hand-made run into a fresh directory: two products (P1 with C1 and C2; P2 with C3).

    Call it with the stats table (see ``stats_table``) and optionally an RM priors table.
    """

    def write(stats: pd.DataFrame, priors: pd.DataFrame | None = None) -> Path:
        run = tmp_path_factory.mktemp("handmade-run")
        (run / "world").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {
                "product_id": ["P1", "P2"],
                "title": ["red mug", "blue lamp"],
                "category": ["mug", "lamp"],
                "price": [9.5, 40.0],
                "colour": ["red", "blue"],
            }
        ).to_parquet(run / "world" / "catalog.parquet", index=False)
        pd.DataFrame({"creative_id": ["C1", "C2", "C3"], "product_id": ["P1", "P1", "P2"]}).to_parquet(
            run / "world" / "creatives.parquet", index=False
        )
        (run / "data").mkdir(exist_ok=True)
        stats.to_parquet(run / "data" / "creative_stats.parquet", index=False)
        if priors is not None:
            write_rm_priors(priors, run / "features" / "rm_priors.parquet")
        return run

    return write


@pytest.fixture(scope="session")
def stats_table():
    """Build an ingest-shaped stats table from (creative_id, product_id, date, segment, impressions, clicks)."""

    def build(rows: list[tuple[str, str, str, str, int, int]]) -> pd.DataFrame:
        frame = pd.DataFrame(
            rows, columns=["creative_id", "product_id", "date", "segment", "impressions", "clicks"]
        )
        frame["date"] = pd.to_datetime(frame["date"]).dt.date
        return frame

    return build
