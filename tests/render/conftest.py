"""Render test fixtures: a tiny SD + ControlNet pipeline saved once per session, and world products."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in these tests may reach a hub

TINY = [
    "render.backend=diffusers",
    "render.image_size=64",
    "render.steps=2",
    "render.device=cpu",
    "render.batch_size=2",
    "render.channels_last=false",
]


@pytest.fixture(scope="session")
def tiny_config(tiny_sd_dir: Path):
    """RenderConfig for the tiny model: 64 px, 2 steps, CPU, batches of 2."""
    from caig.profile import load_profile

    return load_profile("local", [*TINY, f"render.base_model={tiny_sd_dir}"]).render


@pytest.fixture(scope="session")
def tiny_renderer(tiny_config):
    """The diffusers renderer on the tiny model, loaded through make_renderer like PCPO and serving do."""
    from caig.render.factory import make_renderer

    return make_renderer(tiny_config)


@pytest.fixture(scope="session")
def world_product(small_world_dir: Path):
    from caig.world.loaded import load_world

    return load_world(small_world_dir).product_image("P00003")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; on a loaded 2-core machine two threads spin and crawl."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
