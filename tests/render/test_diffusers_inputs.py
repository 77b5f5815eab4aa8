"""Mask, control and init images made from the product (REFERENCE.md "Background generation")."""

from __future__ import annotations

import numpy as np

from caig.render.config import RenderConfig
from caig.render.diffusers_inputs import make_inputs


def test_mask_is_inverse_alpha_dilated(world_product):
    inputs = make_inputs(world_product, RenderConfig(image_size=64, mask_dilation=5))
    alpha = np.asarray(inputs.placement.layer)[..., 3]
    mask = np.asarray(inputs.mask)
    assert (mask[alpha == 0] == 255).all()  # all background is painted
    rim = (alpha == 255) & (mask == 255)  # dilation reaches into the product's rim ...
    assert rim.any()
    assert (mask == 0).any()  # ... but not over all of it
    undilated = np.asarray(make_inputs(world_product, RenderConfig(image_size=64, mask_dilation=0)).mask)
    assert np.array_equal(undilated, 255 - alpha)


def test_control_has_product_edges_only(world_product):
    inputs = make_inputs(world_product, RenderConfig(image_size=64))
    control = np.asarray(inputs.control)
    assert control.shape == (64, 64, 3) and set(np.unique(control)) <= {0, 255}
    x0, y0, x1, y1 = inputs.placement.box
    outside = np.ones((64, 64), bool)
    outside[max(0, y0 - 1) : y1 + 1, max(0, x0 - 1) : x1 + 1] = False
    assert control[..., 0][~outside].any() and not control[..., 0][outside].any()


def test_init_is_product_over_grey(world_product):
    inputs = make_inputs(world_product, RenderConfig(image_size=64))
    alpha = np.asarray(inputs.placement.layer)[..., 3]
    init = np.asarray(inputs.init)
    assert (init[alpha == 0] == 127).all()
    assert np.array_equal(init[alpha == 255], np.asarray(inputs.placement.layer)[..., :3][alpha == 255])
