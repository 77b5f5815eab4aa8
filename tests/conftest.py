"""Session fixtures shared by every stage's tests: one small world, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from caig.profile import Profile, load_profile
from caig.world.build import build_world

SMALL_WORLD = [
    "world.n_products=48",
    "world.n_creatives_per_product=5",
    "world.n_events=400000",
    "world.n_days=7",
    "world.image_size=64",
    "world.contact_sheet_products=4",
    "data.pairs.min_impressions=800",
]


@pytest.fixture(scope="session")
def small_profile() -> Profile:
    """The local profile shrunk to a world that builds in a few seconds."""
    return load_profile("local", SMALL_WORLD)


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory: pytest.TempPathFactory, small_profile: Profile) -> Path:
    """A small world (48 products, 240 creatives, 400k events, seed 0), built once per test session.

    Read-only for tests: copy it before changing anything in it.
    """
    out = tmp_path_factory.mktemp("world-seed0")
    build_world(small_profile.world, out, seed=0, pair_rule=small_profile.data.pairs)
    return out


GENERATE = ["generate.candidates=3", "generate.keep=2", "generate.max_new_tokens=8", "render.image_size=64"]


@pytest.fixture(scope="session")
def generate_profile() -> Profile:
    return load_profile("local", [*SMALL_WORLD, *GENERATE])


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory, generate_profile: Profile, small_world_dir: Path):
    """(PM directory, RM directory): untrained tiny models on the small world, enough to exercise generation
    and ranking."""
    from caig.mllm.build import build_tiny, load_model, save_model
    from caig.reward.config import RewardConfig
    from caig.reward.trainer import build_reward_model, save_reward_model

    root = tmp_path_factory.mktemp("generate-models")
    model, processor = build_tiny(generate_profile.mllm, small_world_dir)
    pm = save_model(model, processor, root / "pm")
    config = RewardConfig(image_side=32, eval_batch_size=8)
    llava, processor = load_model(pm)
    rm = save_reward_model(build_reward_model(llava, processor, config), processor, config, root / "rm")
    return pm, rm
