"""`caig data pairs` on the small world: the pair rule's counts, image paths, a split disjoint by product."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from caig.cli import main
from caig.data.config import PairRuleConfig
from caig.data.events import read_events
from caig.data.pairs import build_rm_pairs, creative_totals


@pytest.fixture(scope="module")
def stats_dir(small_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Daily stats of the small world, aggregated with pandas (ingestion has its own tests)."""
    events = read_events(small_world_dir / "events")
    stats = (
        events.assign(date=events["ts"].dt.date)
        .groupby(["creative_id", "product_id", "date", "segment"], as_index=False)
        .agg(impressions=("clicked", "size"), clicks=("clicked", "sum"))
    )
    ds = tmp_path_factory.mktemp("pairs") / "ds"
    ds.mkdir()
    stats.to_parquet(ds / "creative_stats.parquet", index=False)
    return ds


def _run(stats_dir: Path, creatives: Path, out: Path, *sets: str) -> dict:
    main(
        [
            "data",
            "pairs",
            "--stats",
            str(stats_dir),
            "--creatives",
            str(creatives),
            "--out",
            str(out),
            "--set",
            "data.pairs.min_impressions=800",
            *sets,
        ]
    )
    return json.loads((out / "pairs.json").read_text())


def test_pairs_split_disjoint_by_product_with_image_paths(stats_dir, small_world_dir, tmp_path, capsys):
    summary = _run(
        stats_dir,
        small_world_dir / "creatives.parquet",
        tmp_path / "pairs",
        "--set",
        "data.split.test_share=0.25",
    )
    train = pd.read_parquet(tmp_path / "pairs" / "train.parquet")
    test = pd.read_parquet(tmp_path / "pairs" / "test.parquet")
    assert set(train.product_id).isdisjoint(test.product_id)
    assert len(test) > 0 and len(train) > 0
    products = summary["splits"]["train"]["products"] + summary["splits"]["test"]["products"]
    assert summary["splits"]["test"]["products"] == round(0.25 * products)
    assert sorted(summary["test_products"]) == sorted(test.product_id.unique())
    _, expected = build_rm_pairs(
        creative_totals(pd.read_parquet(stats_dir / "creative_stats.parquet")),
        PairRuleConfig(min_impressions=800),
        seed=0,
    )
    counts = summary["counts"]
    assert {k: counts[k] for k in expected} == expected
    assert counts["pairs_with_images"] == expected["pairs"] == len(train) + len(test)
    for frame in (train, test):
        assert all(Path(p).is_file() for p in pd.concat([frame.left_image_path, frame.right_image_path]))
        assert (frame.label == "left").eq(frame.left_ctr > frame.right_ctr).all()
    assert train.left_image_path.iloc[0].endswith(f"{train.left_creative_id.iloc[0]}.png")


def test_pairs_with_a_missing_image_are_dropped_and_counted(stats_dir, small_world_dir, tmp_path, capsys):
    world = tmp_path / "world"
    shutil.copytree(small_world_dir / "images", world / "images")
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet")
    first = _run(stats_dir, small_world_dir / "creatives.parquet", tmp_path / "all")
    train = pd.read_parquet(tmp_path / "all" / "train.parquet")
    victim = train.left_creative_id.iloc[0]
    (world / creatives.set_index("creative_id").loc[victim, "image_path"]).unlink()
    creatives.to_parquet(world / "creatives.parquet", index=False)
    second = _run(stats_dir, world / "creatives.parquet", tmp_path / "some")
    all_pairs = pd.concat([train, pd.read_parquet(tmp_path / "all" / "test.parquet")])
    with_victim = int(
        ((all_pairs.left_creative_id == victim) | (all_pairs.right_creative_id == victim)).sum()
    )
    assert second["counts"]["pairs_dropped_image_file_missing"] == with_victim >= 1
    assert second["counts"]["pairs_with_images"] == first["counts"]["pairs_with_images"] - with_victim
