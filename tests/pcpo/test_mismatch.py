"""Mismatched inputs: 75% of 32x32 patches black, or another product's text with the same image."""

import numpy as np
import pytest
from PIL import Image

from caig.pcpo.mismatch import ProductInput, make_mismatch, mask_patches


def _product(pid, category, colour=(200, 10, 10)):
    return ProductInput(
        pid, Image.new("RGB", (128, 128), colour), {"title": f"{pid} title", "category": category}
    )


def test_mask_patches_blacks_out_75_percent_of_patches():
    image = Image.new("RGB", (128, 128), (255, 255, 255))
    masked = np.asarray(mask_patches(image, np.random.default_rng(0)))
    patches = masked.reshape(4, 32, 4, 32, 3).transpose(0, 2, 1, 3, 4).reshape(16, -1)
    black = (patches == 0).all(axis=1)
    white = (patches == 255).all(axis=1)
    assert black.sum() == 12 and white.sum() == 4


def test_mask_patches_keeps_the_backdrop_the_model_sees():
    """A transparent product image: unmasked patches show the same grey backdrop as the matched input."""
    from caig.mllm.encode import model_image

    image = Image.new("RGBA", (128, 128), (0, 0, 0, 0))  # fully transparent: only backdrop
    image.paste((200, 10, 10, 255), (48, 48, 80, 80))  # a small opaque product in the middle
    masked = np.asarray(mask_patches(image, np.random.default_rng(0)))
    seen = np.asarray(model_image(image))
    patches = masked.reshape(4, 32, 4, 32, 3).transpose(0, 2, 1, 3, 4).reshape(16, -1)
    matched = seen.reshape(4, 32, 4, 32, 3).transpose(0, 2, 1, 3, 4).reshape(16, -1)
    black = (patches == 0).all(axis=1)
    assert black.sum() == 12
    assert (patches[~black] == matched[~black]).all()
    assert (matched[~black] == 128).mean() > 0.5  # grey backdrop, not black


def test_textual_mismatch_keeps_image_and_takes_other_category_text():
    me, same, other = _product("P1", "sofa"), _product("P2", "sofa"), _product("P3", "lipstick")
    mismatched, kind = make_mismatch(me, [me, same, other], np.random.default_rng(0), "pcpo-no-visual")
    assert kind == "textual"
    assert mismatched.image is me.image
    assert mismatched.attributes == other.attributes


def test_visual_mismatch_keeps_text():
    me = _product("P1", "sofa")
    mismatched, kind = make_mismatch(me, [me], np.random.default_rng(0), "pcpo-no-textual")
    assert kind == "visual" and mismatched.attributes == me.attributes
    assert not np.array_equal(np.asarray(mismatched.image), np.asarray(me.image))


def test_full_pcpo_flips_a_fair_coin():
    me, other = _product("P1", "sofa"), _product("P2", "mug")
    rng = np.random.default_rng(1)
    kinds = [make_mismatch(me, [other], rng, "pcpo")[1] for _ in range(400)]
    assert 0.4 < kinds.count("visual") / 400 < 0.6


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="pcpo-no-visual"):
        make_mismatch(_product("P1", "sofa"), [], np.random.default_rng(0), "dpo")
