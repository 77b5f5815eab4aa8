"""Session fixtures of the mllm tests: one tiny LLaVA-NeXT built from config on the small world's text."""

from __future__ import annotations

from pathlib import Path

import pytest

from caig.mllm.build import build_tiny, save_model
from caig.profile import Profile


@pytest.fixture(scope="session")
def tiny_model_dir(
    tmp_path_factory: pytest.TempPathFactory, small_profile: Profile, small_world_dir: Path
) -> Path:
    """A saved, untrained tiny model + processor (``from_pretrained``-loadable). Read-only for tests."""
    model, processor = build_tiny(small_profile.mllm, small_world_dir)
    return save_model(model, processor, tmp_path_factory.mktemp("tiny-mllm"))


@pytest.fixture(scope="session")
def tiny(tiny_model_dir: Path):
    """(model, processor) loaded from ``tiny_model_dir``; do not train this copy in place."""
    from caig.mllm.build import load_model

    return load_model(tiny_model_dir)
