"""Fixtures of the generate tests: a writable copy of the small world's data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path, small_world_dir: Path) -> Path:
    """A writable copy of the small world's data (generation registers creatives in it)."""
    return Path(shutil.copytree(small_world_dir, tmp_path / "data"))
