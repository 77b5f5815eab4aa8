"""An RM on disk: what ``rm.json`` records, and RMs saved before the curriculum got its own section."""

from __future__ import annotations

import json

import pytest

from caig.errors import UserError
from caig.mllm.build import load_model
from caig.reward.config import CURRICULUM_SECTIONS, RewardConfig, RewardRecipeConfig
from caig.reward.curriculum.config import CurriculumConfig, TeacherConfig
from caig.reward.curriculum.stages import recorded
from caig.reward.io import META_FILE, load_reward_config, load_reward_model, read_rm_json, save_reward_model
from caig.reward.model import build_reward_model


def test_rm_json_records_the_config_and_what_training_adds(tmp_path, tiny_model_dir) -> None:
    llava, processor = load_model(tiny_model_dir)
    config = RewardConfig(image_side=32, learning_rate=1e-4)
    curriculum = CurriculumConfig(teacher=TeacherConfig(enabled=True, epochs=2.0))
    save_reward_model(
        build_reward_model(llava, processor, config), processor, config, tmp_path, recorded(curriculum)
    )
    meta = read_rm_json(tmp_path)
    assert meta["reward"]["learning_rate"] == 1e-4 and meta["head"] == "classification"
    assert meta["curriculum"]["teacher"] == {**meta["curriculum"]["teacher"], "enabled": True, "epochs": 2.0}
    assert "teacher" not in meta["reward"]
    assert load_reward_config(tmp_path) == config
    assert load_reward_model(tmp_path, device="cpu")[2] == config


def test_an_rm_saved_with_the_curriculum_in_its_reward_section_still_loads(tmp_path, tiny_model_dir) -> None:
    """RMs trained before the curriculum moved to its own section kept it in ``reward``: skipped when read
    (it shaped the training only), while a profile that sets it is refused (tests/test_profile.py)."""
    llava, processor = load_model(tiny_model_dir)
    config = RewardConfig(image_side=32)
    save_reward_model(build_reward_model(llava, processor, config), processor, config, tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    meta["reward"] |= {name: {"enabled": False} for name in CURRICULUM_SECTIONS}
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    assert load_reward_config(tmp_path) == config
    meta["reward"]["no_such_key"] = 1  # anything else unknown is still an error
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(UserError, match="no_such_key"):
        load_reward_config(tmp_path)


def test_an_rm_saved_with_the_recipe_at_the_top_of_its_reward_section_keeps_it(
    tmp_path, tiny_model_dir
) -> None:
    """RMs trained before ``reward.recipe`` existed kept its switches at the top of ``reward``: they are read
    into ``recipe`` (``image_position`` shapes the prompt the RM is scored with), not dropped."""
    llava, processor = load_model(tiny_model_dir)
    recipe = RewardRecipeConfig(image_position="after_text", train_both_orders=True, ctr_scale=10.0)
    config = RewardConfig(image_side=32, recipe=recipe)
    save_reward_model(build_reward_model(llava, processor, config), processor, config, tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    meta["reward"] |= meta["reward"].pop("recipe")  # the old, flat shape
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    assert "image_position" in read_rm_json(tmp_path)["reward"]
    assert load_reward_config(tmp_path) == config
