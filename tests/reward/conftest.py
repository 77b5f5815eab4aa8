"""Fixtures of the reward tests: one tiny LLaVA-NeXT saved once, and RM pairs from the small world."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from caig.data.event_pairs import pairs_from_events
from caig.mllm.build import build_tiny, save_model
from caig.mllm.config import MLLMConfig
from caig.reward.config import RewardConfig
from caig.reward.data import PairSource, attach_sources


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path) -> Path:
    """A freshly built tiny LLaVA-NeXT (random weights, tokenizer trained on the small world), saved."""
    model, processor = build_tiny(MLLMConfig(), small_world_dir)
    return save_model(model, processor, tmp_path_factory.mktemp("tiny-mllm"))


@pytest.fixture(scope="session")
def rm_config() -> RewardConfig:
    """The local profile's RM settings, shrunk for tests (one short epoch, small batches)."""
    return RewardConfig(
        image_side=32, learning_rate=3e-3, epochs=1.0, batch_size=8, logging_steps=2, eval_batch_size=16
    )


@pytest.fixture(scope="session")
def train_pairs(small_world_dir: Path) -> PairSource:
    """Pairs of the small world by the loose training rule (E = 50, D = 1%)."""
    pairs, _ = pairs_from_events(small_world_dir, RewardConfig().train_pairs, seed=0)
    return attach_sources(pairs, small_world_dir)


def pair_slice(source: PairSource, stop: int, start: int = 0) -> PairSource:
    """The pairs ``start:stop`` of ``source`` (renumbered from 0), with its image sources."""
    return dataclasses.replace(source, pairs=source.pairs.iloc[start:stop].reset_index(drop=True))
