"""The fatigue trigger: products whose recent CTR fell below their running mean, from the logs."""

from __future__ import annotations

import pandas as pd

from caig.generate.config import GenerateConfig
from caig.generate.fatigue import daily_product_stats, fatigued_products
from caig.generate.run import select_products


def daily(ctrs: dict[str, list[float]], impressions: int = 1000) -> pd.DataFrame:
    days = pd.date_range("2026-01-01", periods=len(next(iter(ctrs.values()))), freq="D").date
    rows = [(p, d, impressions, round(c * impressions)) for p, cs in ctrs.items() for d, c in zip(days, cs)]
    return pd.DataFrame(rows, columns=["product_id", "day", "impressions", "clicks"])


def test_a_product_whose_recent_ctr_falls_by_the_margin_is_fatigued():
    stats = daily(
        {"tired": [0.05] * 5 + [0.03] * 2, "steady": [0.05] * 7, "slight": [0.05] * 5 + [0.046] * 2}
    )
    verdict = fatigued_products(stats, days=2, margin=0.2, min_impressions=100).set_index("product_id")
    assert verdict["fatigued"].to_dict() == {"slight": False, "steady": False, "tired": True}
    assert verdict.loc["tired", "recent_ctr"] == 0.03 and verdict.loc["tired", "running_ctr"] == 0.05


def test_too_few_recent_impressions_are_not_called_fatigue():
    stats = daily({"quiet": [0.05] * 5 + [0.0] * 2}, impressions=50)
    assert not fatigued_products(stats, days=2, margin=0.2, min_impressions=200)["fatigued"].any()


def test_fatigued_products_join_those_with_few_creatives(small_world_dir):
    catalog = pd.read_parquet(small_world_dir / "catalog.parquet")
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet")
    config = GenerateConfig(min_creatives=1, fatigue_margin=0.2)
    assert select_products(catalog, creatives, config) == []
    assert select_products(catalog, creatives, config, ["P00003", "P00001"]) == ["P00001", "P00003"]
    stats = daily_product_stats(small_world_dir)
    assert set(stats["product_id"]) == set(catalog["product_id"])
    assert stats["impressions"].sum() == 400_000
