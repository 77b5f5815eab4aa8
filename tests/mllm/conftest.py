"""Session fixtures of the mllm tests: one tiny LLaVA-NeXT built from config on the small world's text."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny(tiny_model_dir: Path):
    """(model, processor) loaded from ``tiny_model_dir``; do not train this copy in place."""
    from caig.mllm.build import load_model

    return load_model(tiny_model_dir)
