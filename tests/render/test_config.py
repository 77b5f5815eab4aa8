"""RenderConfig: defaults from the paper's code, validation, and its place in the profiles."""

from __future__ import annotations

import pytest

from caig.errors import UserError
from caig.profile import load_profile
from caig.render.config import RenderConfig


def test_defaults_follow_the_authors_code():
    c = RenderConfig()
    assert (c.scheduler, c.steps, c.guidance_scale, c.conditioning_scale) == ("euler_a", 30, 7.5, 1.0)
    assert (c.image_size, c.product_scale, c.centre, c.mask_dilation) == (512, 0.78, [0.5, 0.5], 20)
    assert (c.canny_low, c.canny_high, c.safety_checker) == (100, 200, True)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"image_size": 100}, "multiple of 8"),
        ({"centre": [0.5]}, "centre"),
        ({"canny_low": 200, "canny_high": 100}, "canny"),
        ({"steps": 0}, "steps"),
        ({"product_scale": 1.5}, "product_scale"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_values_are_rejected(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        RenderConfig(**kwargs)


def test_profiles_choose_the_backend():
    assert load_profile("local").render.backend == "procedural"
    production = load_profile("production").render
    assert (production.backend, production.dtype, production.steps) == ("diffusers", "float16", 30)


def test_overrides_are_checked_like_the_file():
    assert load_profile("local", ["render.steps=4"]).render.steps == 4
    with pytest.raises(UserError, match="render.backend"):
        load_profile("local", ["render.backend=gan"])
    with pytest.raises(UserError, match="render: image_size must be a multiple of 8"):
        load_profile("local", ["render.image_size=100"])
