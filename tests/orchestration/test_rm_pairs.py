"""RM pairs: loose rule for training, strict rule for testing, and no product on both sides."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from caig.data.config import PairRuleConfig
from caig.data.ingest import ingest_events
from caig.data.tables import read_creatives, read_stats
from caig.orchestration.params import parse_as_of, world_as_of
from caig.orchestration.rm_pairs import build_rm_pairs


@pytest.fixture(scope="module")
def stats(tmp_path_factory, small_world_dir, small_profile):
    out = tmp_path_factory.mktemp("stats")
    creatives = read_creatives(small_world_dir / "creatives.parquet")
    as_of = parse_as_of(world_as_of(small_profile.world))
    ingest_events(small_world_dir / "events", out, small_profile.data.ingest, creatives, as_of)
    return read_stats(out)


def test_train_and_test_sides_use_their_rules_and_share_no_product(
    stats, small_world_dir, small_profile, tmp_path
):
    loose = PairRuleConfig(min_impressions=50, min_ratio_gap=0.01, max_ratio=None, max_pairs_per_product=20)
    creatives = read_creatives(small_world_dir / "creatives.parquet", need_images=True)
    result = build_rm_pairs(
        stats, creatives, small_world_dir, loose, small_profile.data.pairs, small_profile.data.split, tmp_path
    )
    train, test = pd.read_parquet(tmp_path / "train.parquet"), pd.read_parquet(tmp_path / "test.parquet")
    assert not set(train["product_id"]) & set(test["product_id"])
    # the test side is exactly the strict rule's held-out pairs
    strict_test = pd.read_parquet(tmp_path / "rules" / "test_rule" / "test.parquet")
    pd.testing.assert_frame_equal(test, strict_test)
    assert set(test["product_id"]) <= set(result["test_products"])
    # the loose rule gives many more training pairs; every loose pair is either kept or counted as dropped
    loose_total = result["train_rule"]["counts"]["pairs_with_images"]
    assert len(train) + result["train_pairs_dropped_held_out_product"] == loose_total
    assert len(train) > result["test_rule"]["counts"]["pairs_with_images"]
    assert all(Path(p).is_file() for p in train["left_image_path"].head(5))
    assert json.loads((tmp_path / "pairs.json").read_text())["train"]["pairs"] == len(train)
