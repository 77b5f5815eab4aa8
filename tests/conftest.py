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
def tiny_model_dir(
    tmp_path_factory: pytest.TempPathFactory, small_profile: Profile, small_world_dir: Path
) -> Path:
    """A saved, untrained tiny model + processor (``from_pretrained``-loadable), built once for the mllm and
    the multi-process tests. Read-only for tests."""
    from caig.mllm.build import build_tiny, save_model

    model, processor = build_tiny(small_profile.mllm, small_world_dir)
    return save_model(model, processor, tmp_path_factory.mktemp("tiny-mllm"))


@pytest.fixture(scope="session")
def generate_profile() -> Profile:
    return load_profile("local", [*SMALL_WORLD, *GENERATE])


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory, generate_profile: Profile, small_world_dir: Path):
    """(PM directory, RM directory): untrained tiny models on the small world, enough to exercise generation
    and ranking."""
    from caig.mllm.build import build_tiny, load_model, save_model
    from caig.reward.config import RewardConfig
    from caig.reward.io import save_reward_model
    from caig.reward.model import build_reward_model

    root = tmp_path_factory.mktemp("generate-models")
    model, processor = build_tiny(generate_profile.mllm, small_world_dir)
    pm = save_model(model, processor, root / "pm")
    config = RewardConfig(image_side=32, eval_batch_size=8)
    llava, processor = load_model(pm)
    rm = save_reward_model(build_reward_model(llava, processor, config), processor, config, root / "rm")
    return pm, rm


def pcpo_run_layout(pm: Path, out: Path, held_out: list[str], seed: int) -> Path:
    """A `caig pcpo` output's layout without the training: the held-out products in round 0, a randomly
    initialised LoRA adapter of ``pm`` in round 1 (so the merged PM writes differently from the base)."""
    import pandas as pd
    import torch
    from peft import LoraConfig, get_peft_model

    from caig.mllm.build import load_model

    torch.manual_seed(seed)
    base, _ = load_model(pm)
    peft = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.2)  # B starts at zero: make the adapter change something
    (out / "round-00").mkdir(parents=True)
    frame = pd.DataFrame({"product_id": held_out, "description": "on a table"})
    frame.to_parquet(out / "round-00" / "heldout.parquet")
    peft.save_pretrained(out / "round-01" / "adapter")
    (out / "round-01" / "round.json").write_text("{}")
    return out


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight pipeline as `caig render build-tiny` saves it."""
    from caig.render.diffusers_models import build_tiny

    out = tmp_path_factory.mktemp("tiny-sd")
    build_tiny(out, seed=0)
    return out
