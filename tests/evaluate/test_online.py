"""The simulated online A/B of generated creatives (Table 2's analogue) on the small world."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import GENERATE, SMALL_WORLD, pcpo_run_layout

from caig.evaluate.online import held_out_products, online_test
from caig.profile import load_profile

ONLINE = [
    "generate.online.products=6",
    "generate.online.n_impressions=4000",
    "generate.online.batch_size=100",
]


@pytest.fixture(scope="module")
def runs(models, tmp_path_factory) -> dict[str, Path]:
    pm, _ = models
    root = tmp_path_factory.mktemp("online-runs")
    held_out = [f"P{i:05d}" for i in range(40, 48)]
    return {m: pcpo_run_layout(pm, root / m, held_out, seed) for seed, m in enumerate(("pcpo", "dpo"))}


def test_three_arm_sets_serve_the_same_traffic(models, runs, small_world_dir, tmp_path):
    pm, rm = models
    profile = load_profile("local", [*SMALL_WORLD, *GENERATE, *ONLINE])
    result = online_test(profile, small_world_dir, pm, rm, runs, tmp_path / "online")

    assert result["products"] == 6 and result["impressions"] == 4000
    assert set(result["ctr_by_arm_set"]) == {"existing", "pcpo", "dpo"}
    base = result["ctr_by_arm_set"]["existing"]
    assert result["ctr_lift_pcpo"] == pytest.approx(result["ctr_by_arm_set"]["pcpo"] / base - 1)
    assert result["ctr"] == result["ctr_by_arm_set"]["pcpo"]
    assert 0 < result["generated_share"] <= 1 and 0 < result["generated_share_dpo"] <= 1
    assert 0 <= result["match_rate_served"] <= 1
    arms = pd.read_parquet(tmp_path / "online" / "arms.parquet")
    assert set(arms["product_id"]) == {f"P{i:05d}" for i in range(40, 46)}  # the held-out products
    assert set(arms["source"]) == {"existing", "pcpo", "dpo"}
    assert arms["prior_mean"].between(0, 1).all()
    assert json.loads((tmp_path / "online" / "online.json").read_text()) == result
    assert (tmp_path / "online" / "online_ab.png").stat().st_size > 0
    again = online_test(profile, small_world_dir, pm, rm, runs, tmp_path / "again")
    assert again["clicks_by_arm_set"] == result["clicks_by_arm_set"]  # same seeds, same traffic, same clicks


def test_held_out_products_are_those_every_run_held_out(runs):
    assert held_out_products(runs) == [f"P{i:05d}" for i in range(40, 48)]
