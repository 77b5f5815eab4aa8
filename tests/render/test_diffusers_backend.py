"""The diffusers renderer on a tiny SD + ControlNet built from configs (no download): deterministic,
product untouched, labelled, batched like one-by-one, safety checker in the loop, bad input rejected."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from caig.errors import UserError
from caig.render.diffusers_backend import DiffusersRenderer
from caig.render.diffusers_models import resolve_model_path, set_safety_threshold
from caig.render.label import RENDER_KEY, read_label, save_png
from caig.render.placement import place_product

DESCRIPTIONS = ["in a pine forest, golden hour", "on white marble. soft daylight", "city street, neon glow"]


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(np.int16)


def _cut_out(seed: int = 0) -> Image.Image:
    """A 64x64 RGBA product: 50x50 opaque noise on a transparent background (50 = 0.78 * 64, rounded)."""
    rng = np.random.default_rng(seed)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[5:55, 5:55, :3] = rng.integers(0, 256, (50, 50, 3))
    rgba[5:55, 5:55, 3] = 255
    return Image.fromarray(rgba, mode="RGBA")


def test_same_seed_same_image_other_seed_other_image(tiny_renderer, world_product):
    a = tiny_renderer.render(world_product, DESCRIPTIONS[0], seed=11)
    b = tiny_renderer.render(world_product, DESCRIPTIONS[0], seed=11)
    c = tiny_renderer.render(world_product, DESCRIPTIONS[0], seed=12)
    assert a.size == (64, 64) and a.mode == "RGB"
    assert np.array_equal(_arr(a), _arr(b))
    assert not np.array_equal(_arr(a), _arr(c))


def test_product_pixels_identical_to_the_input_product(tiny_renderer):
    product = _cut_out()
    image = tiny_renderer.render(product, "on a beach", seed=3)
    ad, box = _arr(image), json.loads(image.info[RENDER_KEY])["box"]
    assert box == [7, 7, 57, 57]  # centred, not resampled: 0.78 * 64 rounds to the product's 50 pixels
    assert np.array_equal(ad[7:57, 7:57], _arr(product)[5:55, 5:55, :3])
    assert (ad[:7] != 127).any()  # the background was generated, not left as the grey init


def test_resized_product_keeps_its_placed_pixels(tiny_renderer, tiny_config, world_product):
    ad = _arr(tiny_renderer.render(world_product, DESCRIPTIONS[1], seed=4))
    layer = np.asarray(place_product(world_product, 64, tiny_config.product_scale, (0.5, 0.5)).layer)
    opaque = layer[..., 3] == 255
    assert np.array_equal(ad[opaque], layer[..., :3][opaque].astype(np.int16))


def test_label_and_render_facts_in_memory_and_png(tiny_renderer, world_product, tmp_path):
    ad = tiny_renderer.render(world_product, '"on white marble."\n', seed=5)
    label = read_label(save_png(ad, tmp_path / "ad.png"))
    assert label["AI-Generated"] == "true" and label["Description"] == "on white marble"
    facts = label["caig:render"]
    assert facts["backend"] == "diffusers" and facts["seed"] == 5 and facts["safety"] == "passed"
    assert len(facts["box"]) == 4


def test_batch_gives_the_images_of_one_by_one(tiny_renderer, world_product):
    seeds = [21, 22, 23]  # batch_size 2: one call of two, one of one
    batch = tiny_renderer.render_batch(world_product, DESCRIPTIONS, seeds)
    for description, seed, batched in zip(DESCRIPTIONS, seeds, batch, strict=True):
        single = _arr(tiny_renderer.render(world_product, description, seed))
        diff = np.abs(single - _arr(batched))
        # Same random draws per image; batched float32 kernels may round a pixel by one level.
        assert diff.max() <= 2 and (diff > 0).mean() < 0.01


@pytest.mark.parametrize(
    ("product", "description", "fragment"),
    [
        (None, "", "description is empty"),
        (None, " .\n", "description is empty"),
        (Image.new("RGB", (64, 64)), "on marble", "must be RGBA"),
        (Image.new("RGBA", (64, 64)), "on marble", "fully transparent"),
        (Image.new("RGBA", (8, 8), (255, 0, 0, 255)), "on marble", "between 16 and 4096"),
    ],
)
def test_bad_inputs_rejected_with_clear_error(tiny_renderer, world_product, product, description, fragment):
    with pytest.raises(UserError, match=fragment):
        tiny_renderer.render(world_product if product is None else product, description, seed=0)


def test_image_size_must_fit_the_model(tiny_renderer, tiny_config):
    with pytest.raises(UserError, match="multiple of 16"):
        DiffusersRenderer(tiny_renderer.pipe, dataclasses.replace(tiny_config, image_size=72))


def test_flagged_images_are_blanked_counted_and_marked(tiny_renderer, tiny_config, world_product):
    renderer = DiffusersRenderer(tiny_renderer.pipe, tiny_config)
    set_safety_threshold(renderer.pipe.safety_checker, -1.0)  # every image is "unsafe"
    try:
        ad = renderer.render(world_product, DESCRIPTIONS[0], seed=1)
    finally:
        set_safety_threshold(renderer.pipe.safety_checker, 1.0)
    facts = json.loads(ad.info[RENDER_KEY])
    assert facts["safety"] == "flagged" and renderer.n_flagged == 1
    layer = np.asarray(place_product(world_product, 64, tiny_config.product_scale, (0.5, 0.5)).layer)
    assert (_arr(ad)[layer[..., 3] == 0] == 0).all()  # background blanked, product still there


def test_safety_checker_required_unless_switched_off(tiny_renderer, tiny_config):
    from diffusers import StableDiffusionControlNetInpaintPipeline

    parts = {**tiny_renderer.pipe.components, "safety_checker": None, "feature_extractor": None}
    bare = StableDiffusionControlNetInpaintPipeline(**parts, requires_safety_checker=False)
    with pytest.raises(UserError, match="safety_checker"):
        DiffusersRenderer(bare, tiny_config)
    DiffusersRenderer(bare, dataclasses.replace(tiny_config, safety_checker=False))


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("", "is empty"),
        ("s3://bucket/sd15", "local directories only"),
        ("/nonexistent/sd", "no diffusers model"),
    ],
)
def test_model_locations_are_local_only(uri, fragment):
    with pytest.raises(UserError, match=fragment):
        resolve_model_path(uri, "render.base_model")


def test_file_uri_loads(tiny_sd_dir):
    assert resolve_model_path(f"file://{tiny_sd_dir}", "render.base_model") == tiny_sd_dir
