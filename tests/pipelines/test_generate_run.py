"""``caig-generate`` through the real KFP local runner: generate into a data location, then refresh from it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.conftest import pcpo_run_layout

from caig.features.priors import read_rm_priors
from caig.generate.register import GENERATED
from caig.orchestration.source import run_local_pipeline
from caig.profile import load_profile
from caig.world.build import build_world

TINY = [
    "world.n_products=8",
    "world.n_creatives_per_product=2",
    "world.n_events=20000",
    "world.n_days=3",
    "world.image_size=32",
    "world.contact_sheet_products=2",
    "generate.products=all",
    "generate.candidates=2",
    "generate.keep=1",
    "generate.max_new_tokens=6",
    "render.image_size=32",
]


@pytest.fixture(scope="module")
def location(tmp_path_factory):
    """The data location (a directory on the data volume, in the cluster) with one product stripped of its
    creatives, as a product new to the catalog arrives."""
    profile = load_profile("local", TINY)
    out = tmp_path_factory.mktemp("data-location")
    build_world(profile.world, out, seed=5, pair_rule=profile.data.pairs)
    creatives = pd.read_parquet(out / "creatives.parquet")
    creatives[creatives["product_id"] != "P00007"].to_parquet(out / "creatives.parquet", index=False)
    (out / "world.json").unlink()  # real-format data: nothing but the logs, images and text
    return profile, out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, location):
    """Untrained tiny PM, a PCPO run's layout on it, and an RM: real generation and ranking."""
    from caig.mllm.build import build_tiny, load_model, save_model
    from caig.reward.config import RewardConfig
    from caig.reward.io import save_reward_model
    from caig.reward.model import build_reward_model

    profile, data = location
    root = tmp_path_factory.mktemp("generate-models")
    pm = save_model(*build_tiny(profile.mllm, data), root / "pm")
    config = RewardConfig(image_side=32, eval_batch_size=8)
    rm = save_reward_model(
        build_reward_model(*load_model(pm), config), *load_model(pm)[1:], config, root / "rm"
    )
    return {
        "pm": str(pm),
        "optimized": str(pcpo_run_layout(pm, root / "pcpo", ["P00000"], seed=0)),
        "rm": str(rm),
    }


def run(tmp_path, location, trained, name):
    profile, data = location
    arguments = {"data": str(data), **trained}
    metrics = run_local_pipeline(profile, tmp_path / name, name="caig-generate", arguments=arguments)
    return metrics, json.loads((tmp_path / name / "steps.json").read_text())


def test_generate_registers_in_the_location_and_the_refresh_serves_them(tmp_path, location, trained):
    profile, data = location
    before = pd.read_parquet(data / "creatives.parquet")
    metrics, steps = run(tmp_path, location, trained, "first")

    assert metrics["generate.products"] == 8 and metrics["generate.registered"] == 8
    after = pd.read_parquet(data / "creatives.parquet")
    assert len(after) == len(before) + 8 and "P00007" in set(after["product_id"])
    generated = pd.read_parquet(data / GENERATED)
    assert generated["pm"].str.contains(r"\+.*round-01/adapter").all()  # the PCPO run's adapter wrote them
    # the refresh after it copied the location with them, ranked them with the logged ones and served them
    priors = read_rm_priors(steps["rank-creatives"]["priors"] + "/rm_priors.parquet")
    assert set(generated["creative_id"]) <= set(priors["creative_id"])
    assert metrics["features.materialized"] > 0 and metrics["priors.products_scored"] == 8
    new_product = priors[priors["product_id"] == "P00007"]
    assert len(new_product) == 1 and new_product["creative_id"].iloc[0].startswith("G")
    # a re-run registers nothing twice: tests/generate/test_run.py (the same library call this step makes)
