"""make_renderer: both backends behind one interface, checked inputs and labelled outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from caig.errors import UserError
from caig.profile import load_profile
from caig.render.factory import ProceduralBackend, make_renderer
from caig.render.label import RENDER_KEY, is_labelled


def test_backend_switches_by_config(tiny_config):
    assert isinstance(make_renderer(load_profile("local").render), ProceduralBackend)
    assert make_renderer(load_profile("local", ["render.image_size=64"]).render).name == "procedural"


def test_procedural_backend_is_labelled_and_deterministic(world_product):
    renderer = make_renderer(load_profile("local", ["render.image_size=64"]).render)
    images = renderer.render_batch(world_product, ["in a pine forest.", "on white marble"], [3, 4])
    again = renderer.render(world_product, "in a pine forest", 3)
    assert all(is_labelled(img) and img.size == (64, 64) for img in images)
    assert np.array_equal(np.asarray(images[0]), np.asarray(again))
    facts = json.loads(again.info[RENDER_KEY])
    assert facts["backend"] == "procedural" and facts["seed"] == 3 and len(facts["box"]) == 4


def test_procedural_backend_rejects_the_same_bad_inputs(world_product):
    renderer = make_renderer(load_profile("local", ["render.image_size=64"]).render)
    with pytest.raises(UserError, match="description is empty"):
        renderer.render(world_product, "  ", 0)
    with pytest.raises(UserError, match="RGBA"):
        renderer.render(Image.new("RGB", (64, 64)), "on marble", 0)
    with pytest.raises(UserError, match="between 16 and 4096"):
        renderer.render(Image.new("RGBA", (8, 8), (1, 2, 3, 255)), "on marble", 0)


def test_diffusers_backend_needs_a_model():
    with pytest.raises(UserError, match="render.base_model is empty"):
        make_renderer(load_profile("local", ["render.backend=diffusers"]).render)
