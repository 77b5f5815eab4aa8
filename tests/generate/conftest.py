"""Fixtures of the generate tests: a tiny PM and an untrained RM on the small world, and a copy of its data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import SMALL_WORLD

from caig.mllm.build import build_tiny, load_model, save_model
from caig.profile import Profile, load_profile

GENERATE = ["generate.candidates=3", "generate.keep=2", "generate.max_new_tokens=8", "render.image_size=64"]


@pytest.fixture(scope="session")
def generate_profile() -> Profile:
    return load_profile("local", [*SMALL_WORLD, *GENERATE])


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory, generate_profile: Profile, small_world_dir: Path):
    """(PM directory, RM directory): untrained tiny models, enough to exercise generation and ranking."""
    from caig.reward.config import RewardConfig
    from caig.reward.trainer import build_reward_model, save_reward_model

    root = tmp_path_factory.mktemp("generate-models")
    model, processor = build_tiny(generate_profile.mllm, small_world_dir)
    pm = save_model(model, processor, root / "pm")
    config = RewardConfig(image_side=32, eval_batch_size=8)
    llava, processor = load_model(pm)
    rm = save_reward_model(build_reward_model(llava, processor, config), processor, config, root / "rm")
    return pm, rm


@pytest.fixture
def data_dir(tmp_path: Path, small_world_dir: Path) -> Path:
    """A writable copy of the small world's data (generation registers creatives in it)."""
    return Path(shutil.copytree(small_world_dir, tmp_path / "data"))
