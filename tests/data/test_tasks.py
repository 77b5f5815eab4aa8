"""The pre-training task mix: tasks per product, product split, high-CTR targets from LOGGED clicks."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from caig.cli import main
from caig.data.tasks import (
    NO_RANKED,
    TASK_GROUPS,
    TASK_NEEDS,
    build_task_mix,
    load_task_mix,
    logged_creative_ctr,
    rank_creatives,
)
from caig.errors import UserError
from caig.mllm.config import TaskMixConfig
from caig.mllm.templates import IMAGE_PROMPT_QUESTION, NONE_PROMPT_QUESTION, PM_TEMPLATES

# Paper Table 3 (units of 10k examples, 121 in all): the group shares and image + caption -> prompt's share.
TABLE3_GROUP_SHARES = {"image_understanding": 15 / 121, "multimodal_comprehension": 15 / 121}
TABLE3_GROUP_SHARES["prompt_generation"] = 91 / 121
TABLE3_IMAGE_CAPTION_PROMPT_SHARE = 61 / 121


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
    text_only = summary["tasks"]["caption_prompt"] + summary["tasks"]["none_prompt"]
    assert (train["image_path"] == "").sum() == text_only
    catalog = pd.read_parquet(small_world_dir / "catalog.parquet").set_index("product_id")
    category = train[train["task"] == "category"]
    assert (category["answer"].values == catalog.loc[category["product_id"], "category"].values).all()


def test_default_mix_follows_table3_shares(mix):
    summary, train, _, _ = mix
    shares = train["group"].value_counts(normalize=True)
    for group, paper in TABLE3_GROUP_SHARES.items():
        assert abs(shares[group] - paper) < 0.03, (group, shares[group], paper)
        assert summary["group_shares"][group] == pytest.approx(shares[group], abs=1e-4)
    prompt_share = (train["task"] == "prompt_generation").mean()
    assert abs(prompt_share - TABLE3_IMAGE_CAPTION_PROMPT_SHARE) < 0.03, prompt_share
    assert summary["task_shares"]["prompt_generation"] == pytest.approx(prompt_share, abs=1e-4)
    assert sum(summary["task_shares"].values()) == pytest.approx(1.0, abs=1e-3)


def test_every_task_is_built_when_counted(small_world_dir, tmp_path):
    ones = dict.fromkeys(TaskMixConfig().task_counts(), 1)
    summary = build_task_mix(small_world_dir, tmp_path, TaskMixConfig(min_impressions=100, **ones))
    assert set(summary["tasks"]) == set(TASK_GROUPS)
    assert summary["skipped"] == {}  # every product of the small world has two ranked creatives


def test_task_groups_cover_every_configured_task():
    assert list(TASK_GROUPS) == list(TaskMixConfig().task_counts())
    assert set(TASK_NEEDS) <= set(TASK_GROUPS)
    assert set(TASK_GROUPS.values()) == set(TABLE3_GROUP_SHARES)
    assert TASK_GROUPS["title"] == "image_understanding"  # <product image><product caption> -> description


def test_new_table3_tasks_have_the_right_inputs(mix, small_world_dir):
    _, train, _, _ = mix
    catalog = pd.read_parquet(small_world_dir / "catalog.parquet").set_index("product_id")
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet").set_index("image_path")
    none = train[train["task"] == "none_prompt"]  # no image, no product
    assert len(none) > 0 and (none["image_path"] == "").all()
    assert (none["question"] == NONE_PROMPT_QUESTION).all()
    image = train[train["task"] == "image_prompt"]  # the product image, no caption
    assert len(image) > 0 and (image["question"] == IMAGE_PROMPT_QUESTION).all()
    assert (image["image_path"].values == catalog.loc[image["product_id"], "image_path"].values).all()
    both = train[train["task"] == "caption_background"]  # an own creative's image + caption -> its background
    assert len(both) > 0 and both["question"].str.contains("Product Title:").all()
    shown = creatives.loc[both["image_path"]]
    assert (shown["product_id"].values == both["product_id"].values).all()
    assert (shown["description"].values == both["answer"].values).all()


def test_prompt_tasks_without_caption_target_top_logged_ctr_creatives(mix, small_world_dir):
    _, train, _, _ = mix
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet")
    ranked = rank_creatives(
        creatives, logged_creative_ctr(small_world_dir), TaskMixConfig(min_impressions=100)
    )
    top = ranked[ranked["rank"] < 2].groupby("product_id")["description"].apply(set)
    rows = train[train["task"].isin(["none_prompt", "image_prompt"])]
    assert all(row.answer in top[row.product_id] for row in rows.itertuples())


@pytest.fixture(scope="module")
def bare_world(small_world_dir, tmp_path_factory):
    """A catalog with only product_id, title, image_path (as imported real logs), logs as creative stats."""
    root = tmp_path_factory.mktemp("bare-world")
    catalog = pd.read_parquet(small_world_dir / "catalog.parquet")
    catalog[["product_id", "title", "image_path"]].to_parquet(root / "catalog.parquet")
    pd.read_parquet(small_world_dir / "creatives.parquet").to_parquet(root / "creatives.parquet")
    logged_creative_ctr(small_world_dir).to_parquet(root / "creative_stats.parquet")
    return root


def test_a_catalog_without_attributes_skips_and_counts_their_tasks(bare_world, tmp_path):
    config = TaskMixConfig(min_impressions=100, describe_product=2, title=1)
    summary = build_task_mix(bare_world, tmp_path, config, stats_path=bare_world / "creative_stats.parquet")
    train, _, written = load_task_mix(tmp_path)
    assert written["skipped"] == summary["skipped"]
    n = summary["n_products"]
    for task in ("category", "colour", "describe_product"):
        count = config.task_counts()[task]
        assert task not in summary["tasks"]
        ((reason, skipped),) = summary["skipped"][task].items()
        assert "the catalog has no" in reason and (task == "colour" or "category" in reason)
        assert skipped == {"train": count * n["train"], "heldout": count * n["heldout"]}
    assert summary["attributes"] == ["title"]
    assert summary["attributes_missing"] == ["category", "tags", "colour", "price"]
    captioned = train[train["task"].isin(["caption_prompt", "prompt_generation", "caption_background"])]
    assert captioned["question"].str.contains("Product Title:").all()
    assert not captioned["question"].str.contains("Product Category|Colour:|Price:").any()
    assert {"title", "prompt_generation", "caption_background", "none_prompt"} <= set(summary["tasks"])


def test_products_without_ranked_creatives_are_counted_as_skipped(bare_world, small_world_dir, tmp_path):
    stats = pd.read_parquet(bare_world / "creative_stats.parquet")
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet").merge(stats, on="creative_id")
    threshold = int(creatives.groupby("product_id")["impressions"].max().quantile(0.25))
    config = TaskMixConfig(min_impressions=threshold)
    summary = build_task_mix(bare_world, tmp_path, config, stats_path=bare_world / "creative_stats.parquet")
    missing = summary["products_without_ranked_creatives"]
    skipped = summary["skipped"]["prompt_generation"][NO_RANKED]
    assert missing > 0 and sum(skipped.values()) == missing * config.prompt_generation
    assert sum(summary["skipped"]["none_prompt"][NO_RANKED].values()) == missing * config.none_prompt
    assert "caption_background" not in summary["skipped"]  # needs the product's creatives, not clicks
    assert "describe_background" not in summary["skipped"]


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
