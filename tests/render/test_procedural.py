"""The procedural renderer: deterministic, product untouched, descriptions visible in pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from caig.errors import UserError
from caig.render.placement import place_product
from caig.render.procedural import ProceduralRenderer
from caig.world.loaded import load_world


@pytest.fixture(scope="module")
def product(small_world_dir):
    return load_world(small_world_dir).product_image("P00000")


def test_same_seed_same_image(product):
    r = ProceduralRenderer(size=64)
    a = r.render(product, "in a pine forest, with tiny pebbles, golden hour", seed=5)
    b = r.render(product, "in a pine forest, with tiny pebbles, golden hour", seed=5)
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_product_pixels_are_kept_exactly(product):
    r = ProceduralRenderer(size=64)
    ad = np.asarray(r.render(product, "in a city street, neon glow, moody shadows", seed=1))
    placement = place_product(product, 64, 0.78, centre=(0.5, 0.55))
    layer = np.asarray(placement.layer)
    opaque = layer[..., 3] == 255
    assert opaque.sum() > 100
    assert np.array_equal(ad[opaque], layer[opaque][:, :3])


def test_different_descriptions_draw_different_backgrounds(product):
    r = ProceduralRenderer(size=64)
    images = [np.asarray(r.render(product, d, seed=0)).astype(int) for d in
              ("in a sandy beach", "in a gym floor", "in a sandy beach, deep navy palette",
               "in a sandy beach, with bold sale banner")]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).mean() > 3


def test_product_without_alpha_is_rejected(product):
    with pytest.raises(UserError, match="RGBA"):
        ProceduralRenderer(size=64).render(product.convert("RGB"), "in a living room")
    opaque = Image.new("RGBA", (64, 64), (10, 10, 10, 255))
    with pytest.raises(UserError, match="no transparent background"):
        ProceduralRenderer(size=64).render(opaque, "in a living room")
