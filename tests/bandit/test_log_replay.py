"""The log replay: logged CTRs play the users (no oracle); priors that rank like the logs lose fewer clicks
than no priors, and priors that rank against them lose more; the grid search prefers an informative ranking."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from caig.bandit.config import SimulateConfig
from caig.bandit.log_replay import REPLAY_SHRINKAGE, logged_arena, replay_regret
from caig.data.event_pairs import creative_totals_from_events
from caig.errors import UserError
from caig.orchestration.prior_calibration import (
    calibrate_priors,
    calibration_frame,
    priors_table,
    tune_for_regret,
)

CONFIG = SimulateConfig(n_impressions=20_000, batch_size=100, seed=5)


@pytest.fixture(scope="module")
def logged(small_world_dir):
    return logged_arena(small_world_dir)


@pytest.fixture(scope="module")
def logged_frame(small_world_dir):
    """Calibration rows whose log-strengths are the creatives' logged log-CTR (a ranking as good as the logs)."""
    totals = creative_totals_from_events(small_world_dir)
    ranking = totals.assign(log_strength=np.log((totals["clicks"] + 1.0) / (totals["impressions"] + 2.0)))
    return calibration_frame(ranking, totals)


def test_the_arena_replays_each_arms_logged_ctr_shrunk_to_its_product_and_the_logged_mix(
    small_world_dir, logged
):
    events = ds.dataset(small_world_dir / "events", format="parquet").to_table().to_pandas()
    arena = logged.arena
    p, j, s = 3, 2, 1
    here = events[(events["product_id"] == arena.products[p]) & (events["segment"] == arena.segments[s])]
    arm = here[here["creative_id"] == arena.creative_ids[p, j]]
    base = (here["clicked"].sum() + 1) / (len(here) + 2)
    expected = (arm["clicked"].sum() + REPLAY_SHRINKAGE * base) / (len(arm) + REPLAY_SHRINKAGE)
    assert arena.true_ctr[p, j, s] == pytest.approx(expected)
    assert int(arena.valid.sum()) == len(pd.read_parquet(small_world_dir / "creatives.parquet"))
    mix = events["segment"].value_counts(normalize=True).reindex(arena.segments)
    np.testing.assert_allclose(logged.segment_mix, mix.to_numpy())


def test_an_unlogged_creative_replays_its_products_ctr_and_products_can_be_chosen(tmp_path, small_world_dir):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_world_dir / "events", data / "events")
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet")
    first = creatives["product_id"].min()
    extra = creatives[creatives["product_id"] == first].head(1).assign(creative_id="NEVER-SHOWN")
    pd.concat([creatives, extra]).to_parquet(data / "creatives.parquet")
    replay = logged_arena(data, products={first})
    arena = replay.arena
    assert arena.products == [first]
    j = list(arena.creative_ids[0]).index("NEVER-SHOWN")
    events = ds.dataset(data / "events", format="parquet").to_table().to_pandas()
    mine = events[events["product_id"] == first]
    for s, segment in enumerate(arena.segments):
        seg = mine[mine["segment"] == segment]
        assert arena.true_ctr[0, j, s] == pytest.approx((seg["clicked"].sum() + 1) / (len(seg) + 2))
    with pytest.raises(UserError, match="none of the requested products"):
        logged_arena(data, products={"NO-SUCH-PRODUCT"})


def test_priors_ranked_like_the_logs_lose_fewer_clicks_than_none_and_reversed_ones_more(logged, logged_frame):
    good = priors_table(logged_frame, temperature=1.0, strength=200.0)
    reversed_frame = logged_frame.assign(log_strength=-logged_frame["log_strength"])
    bad = priors_table(reversed_frame, temperature=1.0, strength=200.0)
    none = replay_regret(logged, None, CONFIG)
    assert replay_regret(logged, good, CONFIG) < 0.7 * none
    assert replay_regret(logged, bad, CONFIG) > none


def test_the_grid_search_trusts_an_informative_ranking(logged, logged_frame):
    tuned = tune_for_regret(logged_frame, logged, CONFIG, temperatures=(0.0, 1.0), strengths=(10.0, 200.0))
    assert len(tuned["grid"]) == 4 and tuned["seeds"] == [5, 6, 7]
    assert tuned["prior_temperature"] == 1.0 and tuned["ratio_to_no_prior"] < 0.8


def test_the_objective_picks_which_fit_goes_on_top_and_an_unknown_one_is_named(logged, logged_frame):
    small = replace(CONFIG, n_impressions=2_000)
    fitted = calibrate_priors(logged_frame, logged, small, objective="likelihood")
    assert fitted["prior_temperature"] == fitted["likelihood"]["prior_temperature"]
    assert fitted["overrides"][1] == f"orchestration.refresh.prior_strength={fitted['prior_strength']:.4g}"
    with pytest.raises(UserError, match="unknown calibration objective 'clicks'"):
        calibrate_priors(logged_frame, logged, small, objective="clicks")
