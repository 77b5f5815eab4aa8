"""Candidates and RM priors from a real Feast store (SQLite online store), as the production selector reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from caig.bandit.config import BanditConfig
from caig.bandit.feast_provider import FeastProvider
from caig.bandit.selector import POLICY_RM_PRIOR, build_selector
from caig.bandit.types import InvalidRequest
from caig.features.config import FeaturesConfig
from caig.features.online import materialize
from caig.features.priors import write_rm_priors
from caig.features.store import apply, open_store, store_dir

STAMP = pd.Timestamp("2026-10-02", tz="UTC")


@pytest.fixture(scope="module")
def feast_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two products (P1: C1, C2; P2: C3), RM priors for C1 and C2, applied and materialized into SQLite."""
    run = tmp_path_factory.mktemp("feast-run")
    (run / "world").mkdir()
    pd.DataFrame(
        {
            "product_id": ["P1", "P2"],
            "title": ["red mug", "blue lamp"],
            "category": ["mug", "lamp"],
            "price": [9.5, 40.0],
            "colour": ["red", "blue"],
        }
    ).to_parquet(run / "world" / "catalog.parquet")
    pd.DataFrame({"creative_id": ["C1", "C2", "C3"], "product_id": ["P1", "P1", "P2"]}).to_parquet(
        run / "world" / "creatives.parquet"
    )
    (run / "data").mkdir()
    stats = pd.DataFrame(
        {
            "creative_id": ["C1", "C2", "C3"],
            "product_id": ["P1", "P1", "P2"],
            "date": pd.to_datetime(["2026-10-01"] * 3).date,
            "segment": ["young"] * 3,
            "impressions": [100, 100, 100],
            "clicks": [3, 5, 4],
        }
    )
    stats.to_parquet(run / "data" / "creative_stats.parquet")
    write_rm_priors(
        pd.DataFrame(
            {
                "creative_id": ["C1", "C2"],
                "product_id": ["P1", "P1"],
                "rm_score": [0.9, 0.1],
                "prior_alpha": [45.0, 2.0],
                "prior_beta": [55.0, 98.0],
                "event_timestamp": [STAMP, STAMP],
            }
        ),
        run / "features" / "rm_priors.parquet",
    )
    config = FeaturesConfig()
    apply(config, run)
    materialize(open_store(config, store_dir(config, run)), datetime(2026, 10, 10, tzinfo=UTC))
    return run


def test_feast_provider_reads_candidates_and_priors(feast_run: Path):
    provider = FeastProvider(FeaturesConfig(), feast_run, cache_seconds=0)
    arms = {a.creative_id: (a.prior_alpha, a.prior_beta) for a in provider.candidates("P1")}
    assert arms == {"C1": (45.0, 55.0), "C2": (2.0, 98.0)}
    assert [(a.creative_id, a.prior_alpha, a.prior_beta) for a in provider.candidates("P2")] == [
        ("C3", 1.0, 1.0)
    ]
    with pytest.raises(InvalidRequest) as err:
        provider.candidates("P404")
    assert err.value.field == "product_id"


def test_selector_on_feast_follows_the_rm_prior(feast_run: Path):
    config = BanditConfig(provider="feast", seed=0, sqlite_path=str(feast_run / "bandit.sqlite"))
    selector = build_selector(config, feast_run, FeaturesConfig())
    try:
        picks = [selector.select("P1", "young") for _ in range(50)]
        assert sum(p.creative_id == "C1" for p in picks) >= 48 and picks[0].policy == POLICY_RM_PRIOR
    finally:
        selector.close()
