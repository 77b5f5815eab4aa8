"""The RM curriculum's stages: order, the config each trains with, and what each needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from caig.errors import UserError
from caig.reward.curriculum.config import CurriculumConfig, SideWarmupConfig, TeacherConfig
from caig.reward.curriculum.stages import build_stages


def test_stages_in_order_with_their_own_rates_and_losses(
    tmp_path, rm_config, train_pairs, small_world_dir
) -> None:
    config = dataclasses.replace(rm_config, learning_rate=3e-4, point_weight=0.5)
    curriculum = CurriculumConfig(
        side_warmup=SideWarmupConfig(enabled=True, max_pairs=10, learning_rate=1e-3),
        teacher=TeacherConfig(enabled=True, min_df=1, epochs=2.0),
    )
    stages = build_stages(train_pairs, config, curriculum, small_world_dir, tmp_path)
    assert [s.name for s in stages] == ["side-warmup", "teacher", "pairs"]
    warm, teacher, pairs = stages
    assert (
        len(warm.source.pairs) <= 10 and warm.config.learning_rate == 1e-3 and warm.config.point_weight == 0
    )
    assert (
        teacher.config.epochs == 2.0
        and teacher.config.point_weight == 0
        and teacher.config.learning_rate == 3e-4
    )
    assert teacher.source.pairs["p_right"].between(0, 1).all()
    assert all(Path(p).is_file() for p in teacher.source.pairs["left_image_path"].head())
    assert pairs.source is train_pairs and pairs.config is config  # the logged pairs, as configured
    own_rate = dataclasses.replace(
        curriculum, teacher=dataclasses.replace(curriculum.teacher, learning_rate=1e-3)
    )
    _, teacher, pairs = build_stages(train_pairs, config, own_rate, small_world_dir, tmp_path / "own")
    assert teacher.config.learning_rate == 1e-3 and pairs.config.learning_rate == 3e-4


def test_no_curriculum_is_the_paper_and_the_teacher_needs_the_data(tmp_path, rm_config, train_pairs) -> None:
    off = CurriculumConfig()
    assert [s.name for s in build_stages(train_pairs, rm_config, off, None, tmp_path)] == ["pairs"]
    curriculum = CurriculumConfig(teacher=TeacherConfig(enabled=True))
    with pytest.raises(UserError, match="--world"):
        build_stages(train_pairs, rm_config, curriculum, None, tmp_path)


def test_teacher_utilities_are_the_ctr_targets_and_agree_with_its_labels(
    tmp_path, rm_config, train_pairs, small_world_dir
) -> None:
    curriculum = CurriculumConfig(teacher=TeacherConfig(enabled=True, min_df=1, utility_weight=0.5))
    teacher, _ = build_stages(train_pairs, rm_config, curriculum, small_world_dir, tmp_path)
    pairs = teacher.source.pairs
    assert (
        teacher.name == "teacher"
        and teacher.config.point_weight == 0.5
        and teacher.config.recipe.ctr_scale == 1.0
    )
    # P(right wins) is the logistic of utility(right) - utility(left); the utilities are standardised
    utilities = np.concatenate([pairs["left_ctr"], pairs["right_ctr"]])
    assert abs(utilities.mean()) < 0.5 and 0.5 < utilities.std() < 1.5
    decided = (pairs["p_right"] - 0.5).abs() > 1e-6
    agree = (pairs["right_ctr"] > pairs["left_ctr"]) == (pairs["p_right"] > 0.5)
    assert agree[decided].all() and decided.sum() > 10
    with pytest.raises(ValueError, match="utility_weight"):
        TeacherConfig(utility_weight=-1.0)
