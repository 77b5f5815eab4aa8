"""``caig-refresh`` through the real KFP local runner (SubprocessRunner) on a tiny world and a tiny RM.

The training pipeline is the same machinery with more (and slower) steps; ``caig run --local`` runs it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from caig.features.priors import read_rm_priors
from caig.orchestration.source import run_local_pipeline
from caig.profile import load_profile
from caig.world.build import build_world

TINY_WORLD = [
    "world.n_products=10",
    "world.n_creatives_per_product=3",
    "world.n_events=30000",
    "world.n_days=3",
    "world.image_size=32",
    "world.contact_sheet_products=2",
    "orchestration.refresh.prior_strength=40",
]


@pytest.fixture(scope="module")
def tiny_profile():
    return load_profile("local", TINY_WORLD)


@pytest.fixture(scope="module")
def new_logs(tmp_path_factory, tiny_profile):
    """A day's data in the world's layout, at a location (the refresh's ``data`` parameter)."""
    out = tmp_path_factory.mktemp("new-logs")
    build_world(tiny_profile.world, out, seed=3, pair_rule=tiny_profile.data.pairs)
    return out


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory, tiny_profile, new_logs):
    """An untrained tiny RM saved like `caig rm train` writes it: real scoring, arbitrary preferences."""
    from caig.mllm.build import build_tiny
    from caig.reward.config import RewardConfig
    from caig.reward.io import save_reward_model
    from caig.reward.model import build_reward_model

    config = RewardConfig(image_side=32, eval_batch_size=8)
    llava, processor = build_tiny(tiny_profile.mllm, new_logs)
    return save_reward_model(
        build_reward_model(llava, processor, config), processor, config, tmp_path_factory.mktemp("rm")
    )


@pytest.fixture(scope="module")
def refresh_run(tmp_path_factory, tiny_profile, new_logs, tiny_rm):
    out = tmp_path_factory.mktemp("refresh-run")
    arguments = {"data": str(new_logs), "rm": str(tiny_rm)}
    metrics = run_local_pipeline(tiny_profile, out, seed=0, name="caig-refresh", arguments=arguments)
    return out, metrics, json.loads((out / "steps.json").read_text())


def test_run_directory_layout(refresh_run):
    out, metrics, steps = refresh_run
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert set(steps) == {
        "resolve-as-of",
        "build-world",
        "ingest-events",
        "validate-stats",
        "rank-creatives",
        "materialize-features",
        "refresh-report",
    }
    timings = json.loads((out / "timings.json").read_text())  # one entry per step that ran
    assert set(timings) == set(steps) and all(t >= 0 for t in timings.values())
    assert "priors.creatives_scored" in (out / "report.html").read_text()
    assert "| data.rows_read |" in (out / "report.md").read_text()
    # the staged data and the ingested stats are where the CLI looks for a run's data
    assert (out / "world" / "catalog.parquet").is_file() and (out / "world").is_symlink()
    assert (out / "data" / "creative_stats.parquet").is_file()


def test_every_creative_gets_an_rm_prior(refresh_run, new_logs, tiny_profile):
    out, metrics, steps = refresh_run
    creatives = pd.read_parquet(new_logs / "creatives.parquet")
    priors = read_rm_priors(steps["rank-creatives"]["priors"] + "/rm_priors.parquet")
    assert sorted(priors["creative_id"]) == sorted(creatives["creative_id"])
    assert metrics["priors.creatives_scored"] == len(creatives) and metrics["priors.products_not_scored"] == 0
    np.testing.assert_allclose(priors["prior_alpha"] + priors["prior_beta"], 40.0)
    assert priors["event_timestamp"].eq(pd.Timestamp("2026-10-04", tz="UTC")).all()  # as_of: the world's end
    # the ranking lists each product's creatives once, strongest first
    ranking = pd.read_parquet(steps["rank-creatives"]["priors"] + "/ranking.parquet")
    for _, group in ranking.groupby("product_id"):
        assert list(group["rank"]) == list(range(len(group)))
        assert group["log_strength"].is_monotonic_decreasing
    # a better-ranked creative has the higher prior mean
    merged = ranking.merge(priors, on=["product_id", "creative_id"])
    mean = merged["prior_alpha"] / 40.0
    for _, group in merged.assign(mean=mean).groupby("product_id"):
        assert group.sort_values("rank")["mean"].is_monotonic_decreasing


def test_features_serve_the_new_priors_online(refresh_run, tiny_profile):
    from caig.features.online import product_features
    from caig.features.store import open_store

    out, metrics, steps = refresh_run
    assert metrics["features.rows.rm_prior"] == metrics["priors.creatives_scored"]
    priors = read_rm_priors(steps["rank-creatives"]["priors"] + "/rm_priors.parquet")
    # the run's store is where `caig features get --run OUT` looks: OUT/features (features.store_dir)
    assert (out / "features").is_symlink()
    store = open_store(tiny_profile.features, out / "features")
    product = priors["product_id"].iloc[0]
    online = product_features(store, product)
    served = {c["creative_id"]: c["prior_alpha"] for c in online["creatives"]}
    expected = priors[priors["product_id"] == product].set_index("creative_id")["prior_alpha"]
    assert served == pytest.approx(expected.to_dict())


def test_an_rm_that_is_not_there_fails_the_run_with_one_line(tmp_path, tiny_profile, new_logs):
    from caig.errors import UserError

    with pytest.raises(UserError, match="pipeline caig-refresh failed"):
        run_local_pipeline(
            tiny_profile,
            tmp_path,
            name="caig-refresh",
            arguments={"data": str(new_logs), "rm": str(tmp_path / "no-rm")},
        )
