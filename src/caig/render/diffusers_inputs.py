"""The three images an inpainting ControlNet pipeline needs, made from one product (REFERENCE.md):

- ``init``: the placed product over neutral grey (the latents of the product region come from it);
- ``mask``: 255 - alpha, dilated (white = paint here), so the model may repaint the product's rim, which
  :func:`caig.render.placement.paste_back` restores with the undilated alpha afterwards;
- ``control``: canny edges of the placed product with its background zeroed, so the ControlNet keeps the
  generated scene consistent with the product's outline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from caig.render.canny import canny
from caig.render.config import RenderConfig
from caig.render.placement import Placement, paste_back, place_product
from caig.render.prompt import check_product_size

_GREY = (127, 127, 127)


@dataclass(frozen=True)
class InpaintInputs:
    """A placed product and the pipeline images made from it, all ``image_size`` square."""

    placement: Placement
    init: Image.Image  # RGB
    mask: Image.Image  # L, 255 = background to generate
    control: Image.Image  # RGB canny edges


def inpaint_mask(placement: Placement, dilation: int) -> Image.Image:
    """255 - alpha, grown by a ``dilation`` x ``dilation`` square (rounded up to an odd side)."""
    mask = Image.eval(placement.layer.getchannel("A"), lambda a: 255 - a)
    if dilation > 1:
        mask = mask.filter(ImageFilter.MaxFilter(dilation | 1))
    return mask


def control_image(placement: Placement, low: int, high: int) -> Image.Image:
    """Canny edges of the placed product on a zeroed (black) background, as a 3-channel image."""
    rgba = np.asarray(placement.layer).astype(np.float32)
    grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    grey = np.where(rgba[..., 3] >= 128, grey, 0.0)
    edges = canny(np.clip(np.rint(grey), 0, 255).astype(np.uint8), low, high)
    return Image.fromarray(np.repeat(edges[..., None], 3, axis=2), mode="RGB")


def make_inputs(product: Image.Image, config: RenderConfig) -> InpaintInputs:
    """Place the product as configured and build the init, mask and control images."""
    check_product_size(product)
    placement = place_product(product, config.image_size, config.product_scale, centre=tuple(config.centre))
    init = paste_back(Image.new("RGB", placement.layer.size, _GREY), placement)
    return InpaintInputs(
        placement=placement,
        init=init,
        mask=inpaint_mask(placement, config.mask_dilation),
        control=control_image(placement, config.canny_low, config.canny_high),
    )
