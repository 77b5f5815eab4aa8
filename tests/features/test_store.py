"""feature_store.yaml per profile, the declarative repo (also under Feast's own CLI), and source preparation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from caig.errors import UserError
from caig.features.config import FeaturesConfig
from caig.features.sources import prepare_sources
from caig.features.store import load_definitions, repo_dir, store_yaml

REPO = Path(__file__).resolve().parents[2] / "feature_repo"


def test_store_yaml_is_sqlite_locally_and_redis_in_production():
    local = store_yaml(FeaturesConfig())
    assert local["online_store"] == {"type": "sqlite", "path": "data/online_store.db"}
    assert local["offline_store"] == {"type": "file"} and local["project"] == "caig"
    prod = store_yaml(FeaturesConfig(online_store="redis", redis_connection_string="redis:6379,db=1"))
    assert prod["online_store"] == {"type": "redis", "connection_string": "redis:6379,db=1"}


def test_the_committed_yaml_is_the_local_profile():
    assert yaml.safe_load((REPO / "feature_store.yaml").read_text()) == store_yaml(FeaturesConfig())


def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match="project"):
        FeaturesConfig(project="_hidden")
    with pytest.raises(ValueError, match="redis_connection_string"):
        FeaturesConfig(online_store="redis", redis_connection_string=" ")


def test_definitions_are_the_repo_objects_and_feastignore_is_honoured(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns("data", "__pycache__"))
    (copy / "data").mkdir()
    (copy / "data" / "broken.py").write_text("raise RuntimeError('data/ must never be imported')\n")
    contents = load_definitions(copy)
    assert sorted(v.name for v in contents.feature_views) == [
        "creative_ctr_stats",
        "product_creatives",
        "product_profile",
        "rm_prior",
    ]
    assert sorted(s.name for s in contents.feature_services) == ["rm_training_v1", "selector_online_v1"]
    assert {"product", "creative"} <= {e.name for e in contents.entities}
    assert repo_dir(FeaturesConfig(repo_path=str(copy))) == copy


def test_feast_cli_applies_the_repo_as_committed(tmp_path, feature_run_dir):
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns("data", "__pycache__"))
    prepare_sources(FeaturesConfig(), feature_run_dir, copy)
    feast = Path(sys.executable).parent / "feast"
    done = subprocess.run([str(feast), "apply"], cwd=copy, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    from feast import FeatureStore

    services = {s.name for s in FeatureStore(repo_path=str(copy)).list_feature_services()}
    assert services == {"rm_training_v1", "selector_online_v1"}


def test_missing_stats_point_to_ingestion(tmp_path, feature_run_dir):
    config = FeaturesConfig(stats_path=str(tmp_path / "nope.parquet"))
    with pytest.raises(UserError, match="caig data ingest"):
        prepare_sources(config, feature_run_dir, tmp_path / "store")


def test_creatives_of_unknown_products_are_refused(tmp_path, handmade_run, stats_table):
    run = handmade_run(stats_table([("C1", "P1", "2026-10-01", "young", 10, 1)]))
    creatives = run / "world" / "creatives.parquet"
    pd.DataFrame({"creative_id": ["C1", "C9"], "product_id": ["P1", "P9"]}).to_parquet(creatives, index=False)
    with pytest.raises(UserError, match="1 creative.*P9"):
        prepare_sources(FeaturesConfig(), run, tmp_path / "store")
