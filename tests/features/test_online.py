"""Online lookups answered from the SQLite online store and from the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import redis

from caig.errors import UserError
from caig.features.config import FeaturesConfig
from caig.features.online import ProductFeatureReader, materialize, product_features
from caig.features.priors import write_rm_priors
from caig.features.store import apply, open_store, store_dir
from caig.features.windows import window_stats

FIRST_END = datetime(2026, 11, 1, tzinfo=UTC)
REDIS_DB = 9  # this suite's Redis database; keys are further namespaced by a per-run project name


def _priors(creatives: pd.DataFrame, stamp: str, shift: float = 0.0) -> pd.DataFrame:
    score = ((creatives["creative_id"].str[-2:].astype(int) % 10) / 10 + shift).clip(0.0, 1.0)
    return pd.DataFrame(
        {
            "creative_id": creatives["creative_id"],
            "product_id": creatives["product_id"],
            "rm_score": score,
            "prior_alpha": 1 + 20 * score,
            "prior_beta": 1 + 20 * (1 - score),
            "event_timestamp": pd.Timestamp(stamp, tz="UTC"),
        }
    )


@pytest.fixture(scope="module")
def creatives(feature_run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(feature_run_dir / "world" / "creatives.parquet")


@pytest.fixture(scope="module")
def sqlite_setup(feature_run_dir, creatives, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sqlite-store")
    priors = write_rm_priors(_priors(creatives, "2026-10-20"), tmp / "rm_priors.parquet")
    config = FeaturesConfig(store_dir=str(tmp / "store"), priors_path=str(priors))
    summary = apply(config, feature_run_dir)
    store = open_store(config, store_dir(config, feature_run_dir))
    started = materialize(store, FIRST_END)
    return config, store, summary, started


def test_apply_registers_the_repo_and_writes_every_source(sqlite_setup, creatives):
    config, store, summary, started = sqlite_setup
    assert summary["feature_views"] == [
        "creative_ctr_stats",
        "product_creatives",
        "product_profile",
        "rm_prior",
    ]
    assert summary["feature_services"] == ["rm_training_v1", "selector_online_v1"]
    assert summary["rows"]["product_profile"] == 48 and summary["rows"]["rm_prior"] == len(creatives)
    assert (Path(config.store_dir) / "data" / "online_store.db").is_file()
    assert set(started) == set(summary["feature_views"]) and all(started.values())


def test_sqlite_lookup_returns_the_latest_offline_row_of_each_creative(
    sqlite_setup, feature_run_dir, creatives
):
    _, store, _, _ = sqlite_setup
    got = product_features(store, "P00003")
    catalog = pd.read_parquet(feature_run_dir / "world" / "catalog.parquet").set_index("product_id")
    assert (got["title"], got["category"], got["colour"]) == tuple(
        catalog.loc["P00003", ["title", "category", "colour"]]
    )
    assert got["price"] == pytest.approx(catalog.loc["P00003", "price"])
    expected_ids = sorted(creatives.loc[creatives.product_id == "P00003", "creative_id"])
    assert [c["creative_id"] for c in got["creatives"]] == expected_ids
    windows = window_stats(pd.read_parquet(feature_run_dir / "data" / "creative_stats.parquet"))
    latest = windows.sort_values("event_timestamp").groupby("creative_id").last()
    for creative in got["creatives"]:
        row = latest.loc[creative["creative_id"]]
        for column in ("impressions_1d", "clicks_7d", "impressions_28d", "ctr_7d", "ctr_28d"):
            assert creative[column] == pytest.approx(row[column]), column
        assert 0 <= creative["rm_score"] <= 1 and creative["prior_alpha"] > 0


def test_unknown_product_is_a_user_error(sqlite_setup):
    _, store, _, _ = sqlite_setup
    with pytest.raises(UserError, match="P99999"):
        product_features(store, "P99999")


def test_materialize_is_incremental_for_stats_and_restates_snapshots(
    sqlite_setup, feature_run_dir, creatives
):
    config, store, _, _ = sqlite_setup
    reader = ProductFeatureReader(store)
    before = {c["creative_id"]: c["rm_score"] for c in reader.get("P00001")["creatives"]}
    write_rm_priors(_priors(creatives, "2026-11-10", shift=-0.05), Path(config.priors_path))
    apply(config, feature_run_dir)  # the reward stage wrote new priors: prepare and re-apply
    started = materialize(store, datetime(2026, 11, 20, tzinfo=UTC))
    assert started["creative_ctr_stats"] == FIRST_END.isoformat()  # the stats: what came after the first run
    # a snapshot view: the restated table, whole (from its first row)
    assert started["rm_prior"] < "2026-11-10"
    after = {c["creative_id"]: c["rm_score"] for c in reader.get("P00001")["creatives"]}
    assert after.keys() == before.keys()
    assert any(after[c] != before[c] for c in after)
    assert all(after[c] == pytest.approx(max(before[c] - 0.05, 0.0)) for c in after)


def test_a_store_applied_for_another_profile_is_refused(sqlite_setup, feature_run_dir):
    config, _, _, _ = sqlite_setup
    other = FeaturesConfig(store_dir=config.store_dir, online_store="redis")
    with pytest.raises(UserError, match="another profile"):
        open_store(other, store_dir(other, feature_run_dir))


@pytest.mark.redis
def test_redis_lookup_matches_sqlite(sqlite_setup, feature_run_dir, tmp_path):
    _, sqlite_store, _, _ = sqlite_setup
    project = f"caig_test_{uuid.uuid4().hex[:10]}"
    config = FeaturesConfig(
        project=project,
        online_store="redis",
        redis_connection_string=f"127.0.0.1:6379,db={REDIS_DB}",
        store_dir=str(tmp_path / "store"),
        priors_path=sqlite_setup[0].priors_path,
    )
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    apply(config, feature_run_dir)
    store = open_store(config, store_dir(config, feature_run_dir))
    try:
        materialize(store, datetime(2026, 11, 20, tzinfo=UTC))
        ours = list(client.scan_iter(match=f"*{project}", count=1000))
        assert len(ours) >= 48  # one hash per product and per creative, in this project only
        assert not (tmp_path / "store" / "data" / "online_store.db").exists()
        for product in ("P00000", "P00003", "P00047"):
            assert product_features(store, product) == product_features(sqlite_store, product)
    finally:
        store.teardown()
        leftover = list(client.scan_iter(match=f"*{project}", count=1000))
        if leftover:
            client.delete(*leftover)
    assert not list(client.scan_iter(match=f"*{project}", count=1000))
