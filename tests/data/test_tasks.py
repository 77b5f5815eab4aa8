"""The pre-training task mix: tasks per product, product split, high-CTR targets from LOGGED clicks."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from caig.cli import main
from caig.data.tasks import build_task_mix, load_task_mix, logged_creative_ctr, rank_creatives
from caig.errors import UserError
from caig.mllm.config import TaskMixConfig
from caig.mllm.templates import PM_TEMPLATES


@pytest.fixture(scope="module")
def mix(small_world_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tasks")
    summary = build_task_mix(small_world_dir, out, TaskMixConfig(min_impressions=100))
    train, heldout, _ = load_task_mix(out)
    return summary, train, heldout, out


def test_every_task_of_table3_is_present_with_configured_counts(mix, small_world_dir):
    summary, train, _, _ = mix
    n_train = summary["n_products"]["train"]
    config = TaskMixConfig()
    assert summary["tasks"]["category"] == config.category * n_train
    assert summary["tasks"]["colour"] == n_train
    assert set(summary["groups"]) == {"image_understanding", "multimodal_comprehension", "prompt_generation"}
    assert (train["image_path"] == "").sum() == summary["tasks"]["caption_prompt"]  # text-only task
    catalog = pd.read_parquet(small_world_dir / "catalog.parquet").set_index("product_id")
    category = train[train["task"] == "category"]
    assert (category["answer"].values == catalog.loc[category["product_id"], "category"].values).all()


def test_products_are_split_without_overlap(mix):
    summary, train, heldout, out = mix
    assert set(train["product_id"]).isdisjoint(heldout["product_id"])
    products = pd.read_parquet(out / "products.parquet")
    assert (products["split"] == "heldout").sum() == summary["n_products"]["heldout"] > 0


def test_prompt_generation_targets_are_the_products_top_logged_ctr_creatives(mix, small_world_dir):
    _, train, _, _ = mix
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet")
    ranked = rank_creatives(
        creatives, logged_creative_ctr(small_world_dir), TaskMixConfig(min_impressions=100)
    )
    top = ranked[ranked["rank"] < 2].groupby("product_id")["description"].apply(set)
    prompts = train[train["task"] == "prompt_generation"]
    assert len(prompts) > 0
    for row in prompts.itertuples():
        assert row.answer in top[row.product_id]
        assert any(row.question.startswith(t.split("'{}'")[0]) for t in PM_TEMPLATES)
        assert "Product Category:" in row.question


def test_ranking_follows_logged_ctr_and_skips_thin_creatives():
    creatives = pd.DataFrame(
        {
            "creative_id": ["a", "b", "c"],
            "product_id": ["P"] * 3,
            "description": ["x", "y", "z"],
            "image_path": [""] * 3,
        }
    )
    stats = pd.DataFrame(
        {"creative_id": ["a", "b", "c"], "impressions": [1000, 1000, 10], "clicks": [10, 50, 9]}
    )
    ranked = rank_creatives(creatives, stats, TaskMixConfig(min_impressions=100, prior_strength=0))
    assert ranked["creative_id"].tolist() == ["b", "a"]  # c has too few impressions to be ranked
    assert ranked["ctr"].tolist() == [0.05, 0.01]


def test_ingested_stats_give_the_same_ranking_as_events(small_world_dir, tmp_path):
    events = logged_creative_ctr(small_world_dir)
    stats = events.assign(date="2026-10-01", segment="all")
    stats.to_parquet(tmp_path / "creative_stats.parquet")
    again = logged_creative_ctr(small_world_dir, tmp_path / "creative_stats.parquet")
    merged = events.merge(again, on="creative_id")
    assert (merged["impressions_x"] == merged["impressions_y"]).all() and len(merged) == len(events)
    with pytest.raises(UserError, match="no such file"):
        logged_creative_ctr(small_world_dir, tmp_path / "missing.parquet")


def test_cli_writes_the_mix(small_world_dir, tmp_path, capsys):
    main(
        [
            "mllm",
            "tasks",
            "--world",
            str(small_world_dir),
            "--out",
            str(tmp_path),
            "--set",
            "pretrain.tasks.rewrite=0",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert "rewrite" not in summary["tasks"] and summary["n_examples"]["train"] > 0
    assert json.loads((tmp_path / "tasks.json").read_text())["config"]["rewrite"] == 0
