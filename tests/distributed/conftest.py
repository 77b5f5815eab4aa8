"""Fixtures of the multi-process tests: a tiny saved model and two task mixes of the small world, one with
text-only examples (``caption_prompt``) and one with an image in every example."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from caig.data.tasks import build_task_mix
from caig.mllm.build import build_tiny, save_model
from caig.mllm.config import TaskMixConfig
from caig.profile import Profile

IMAGES = TaskMixConfig(
    category=1, colour=0, describe_product=0, describe_background=0, title=0, prompt_generation=1,
    caption_prompt=0, rewrite=0, caption_background=0, none_prompt=0, image_prompt=0, min_impressions=100,
)  # fmt: skip


@pytest.fixture(scope="session")
def model_dir(
    tmp_path_factory: pytest.TempPathFactory, small_profile: Profile, small_world_dir: Path
) -> Path:
    """A saved, untrained tiny model + processor. Read-only for tests."""
    model, processor = build_tiny(small_profile.mllm, small_world_dir)
    return save_model(model, processor, tmp_path_factory.mktemp("dist-mllm"))


@pytest.fixture(scope="session")
def image_mix(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path) -> Path:
    """A task mix where every example has an image (what ZeRO-3 needs on several processes)."""
    out = tmp_path_factory.mktemp("mix-images")
    build_task_mix(small_world_dir, out, IMAGES)
    return out


@pytest.fixture(scope="session")
def text_mix(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path) -> Path:
    """A task mix with text-only examples (caption_prompt: attributes, no image)."""
    out = tmp_path_factory.mktemp("mix-text")
    build_task_mix(small_world_dir, out, dataclasses.replace(IMAGES, caption_prompt=1))
    return out
