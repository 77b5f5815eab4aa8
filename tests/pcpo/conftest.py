"""Fixtures of the PCPO tests: a tiny PM with a task split, and an (untrained) tiny RM beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caig.data.tasks import build_task_mix
from caig.mllm.build import build_tiny, save_model
from caig.profile import Profile, load_profile


@pytest.fixture(scope="session")
def pcpo_profile(small_profile: Profile) -> Profile:
    """The small profile with Algorithm 1 shrunk to seconds: 2 rounds of 4 products, short answers."""
    overrides = [
        "pcpo.rounds=2",
        "pcpo.products_per_round=4",
        "pcpo.eval_products=4",
        "pcpo.max_new_tokens=8",
        "pcpo.batch_size=4",
        "pcpo.lora_r=4",
        "pcpo.lora_alpha=8",
        "pcpo.learning_rate=0.01",
        "render.image_size=64",
    ]
    base = [
        f"{k}={v}"
        for k, v in _flatten(small_profile.to_dict()).items()
        if k.startswith(("world.", "data.pairs"))
    ]
    return load_profile("local", base + overrides)


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value)
    return out


@pytest.fixture(scope="session")
def pm_dir(tmp_path_factory: pytest.TempPathFactory, pcpo_profile: Profile, small_world_dir: Path) -> Path:
    """An untrained tiny PM laid out like a `caig pretrain` output (model/ + pretrain.json naming its tasks)."""
    root = tmp_path_factory.mktemp("pcpo-pm")
    build_task_mix(small_world_dir, root / "tasks", pcpo_profile.pretrain.tasks)
    model, processor = build_tiny(pcpo_profile.mllm, small_world_dir)
    save_model(model, processor, root / "pm" / "model")
    (root / "pm" / "pretrain.json").write_text(json.dumps({"tasks": str(root / "tasks")}))
    return root / "pm"


@pytest.fixture(scope="session")
def rm_dir(tmp_path_factory: pytest.TempPathFactory, pcpo_profile: Profile, pm_dir: Path) -> Path:
    """An untrained reward model on the same backbone: enough to exercise the loop's choices."""
    from caig.mllm.build import load_model
    from caig.reward.config import RewardConfig
    from caig.reward.io import save_reward_model
    from caig.reward.model import build_reward_model

    config = RewardConfig(image_side=32, eval_batch_size=8)
    llava, processor = load_model(pm_dir / "model")
    model = build_reward_model(llava, processor, config)
    return save_reward_model(model, processor, config, tmp_path_factory.mktemp("pcpo-rm"))
