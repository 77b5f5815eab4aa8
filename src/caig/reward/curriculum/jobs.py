"""What ``caig rm train`` and ``caig rm ablation`` run, and their pipeline steps: one call each.

Both train the paper's RM with the profile's curriculum in front of the logged pairs (``curriculum``; off in
both profiles, then the logged pairs alone): the CLI command and the KFP component call the same function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caig.distributed import DeepSpeedConfig
from caig.reward.ablation import run_ablation
from caig.reward.config import RewardConfig
from caig.reward.curriculum.config import CurriculumConfig
from caig.reward.curriculum.stages import CurriculumPlan, build_stages, recorded, unshardable
from caig.reward.data import PairSource, load_pair_source
from caig.reward.evaluate import world_ceiling
from caig.reward.trainer import deepspeed_config, train_stages


def check_deepspeed(reward: RewardConfig, curriculum: CurriculumConfig) -> DeepSpeedConfig | None:
    """``reward.deepspeed_config`` checked, and refused under ZeRO-3 with a curriculum stage on (what cannot
    shard): before any process starts (``caig rm train --gpus N``) and before the model loads."""
    return deepspeed_config(reward, unshardable(curriculum))


def train_with_curriculum(
    model_dir: str | Path,
    source: PairSource,
    reward: RewardConfig,
    curriculum: CurriculumConfig,
    out: str | Path,
    data_dir: str | Path | None = None,
    shared: str | Path | None = None,
) -> dict[str, Any]:
    """Fine-tune an RM from the model in ``model_dir``: the curriculum's stages, then ``source``'s logged pairs;
    save it to ``out`` (its ``rm.json`` records the curriculum too). ``data_dir``: where the pairs' creatives
    live (the curriculum's stages read them); ``shared``: see ``build_stages``. Returns the training summary
    (``caig.reward.trainer.train_stages``)."""
    check_deepspeed(reward, curriculum)  # a bad DeepSpeed config stops the run before any stage is built
    stages = build_stages(source, reward, curriculum, data_dir, Path(out), shared, start_model=model_dir)
    return train_stages(model_dir, stages, reward, out, recorded(curriculum))


def train_rm(
    model_dir: str | Path,
    pairs: str | Path,
    data_dir: str | Path,
    reward: RewardConfig,
    curriculum: CurriculumConfig,
    out: str | Path,
) -> dict[str, Any]:
    """``caig rm train``: the training pairs of ``pairs`` (a parquet file or a pairs directory's
    ``train.parquet``) with the creatives of ``data_dir``, then ``train_with_curriculum``."""
    source = load_pair_source(pairs, data_dir, "train")
    return train_with_curriculum(model_dir, source, reward, curriculum, out, data_dir=data_dir)


def rm_ablation(
    reward: RewardConfig,
    curriculum: CurriculumConfig,
    base_model: str | Path,
    pretrained_model: str | Path,
    train_pairs: str | Path,
    test_pairs: str | Path,
    data_dir: str | Path,
    out: str | Path,
    test_dir: str | Path | None = None,
) -> dict[str, Any]:
    """``caig rm ablation``: Table 1 (``caig.reward.ablation.run_ablation``) on the training pairs of
    ``train_pairs`` and the test pairs of ``test_pairs`` (``test_dir``'s creatives when they come from another
    world, else ``data_dir``'s), against the test world's ceiling, every row with the profile's curriculum."""
    train = load_pair_source(train_pairs, data_dir, "train")
    test = load_pair_source(test_pairs, test_dir or data_dir, "test")
    ceiling = world_ceiling(test_dir or data_dir, test.pairs)
    plan = CurriculumPlan(curriculum, data_dir)
    return run_ablation(reward, base_model, pretrained_model, train, test, out, ceiling, plan)
