"""Product placement on the ad canvas, shared by every renderer (paper section 3.1, REFERENCE.md).

The product's alpha channel is its mask; the product is cropped to its bounding box, scaled so its longer
side is ``scale`` of the canvas, and placed at ``centre`` (fractions of the canvas). After a background is
drawn or generated, the product's own pixels are pasted back, so an ad never alters the product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from caig.errors import UserError


@dataclass(frozen=True)
class Placement:
    """The product on the canvas: an RGBA layer of canvas size and its bounding box (x0, y0, x1, y1)."""

    layer: Image.Image
    box: tuple[int, int, int, int]

    @property
    def mask(self) -> Image.Image:
        """Binary mask of the placed product (255 where the product is opaque)."""
        alpha = np.asarray(self.layer.getchannel("A"))
        return Image.fromarray(np.where(alpha >= 128, 255, 0).astype(np.uint8), mode="L")


def check_product_image(product: Image.Image) -> None:
    """Reject a product image the renderers cannot place, with the fix in the message."""
    if product.mode != "RGBA":
        raise UserError(f"product image must be RGBA with the product's alpha as mask, got mode {product.mode}; "
                        "cut the product out (transparent background) and save it as RGBA PNG")
    alpha = np.asarray(product.getchannel("A"))
    if alpha.max() < 128:
        raise UserError("product image is fully transparent: its alpha channel has no product in it")
    if alpha.min() >= 128:
        raise UserError("product image has no transparent background: its alpha is opaque everywhere; "
                        "cut the product out so the renderer knows where the background goes")


def place_product(product: Image.Image, canvas: int, scale: float = 0.78,
                  centre: tuple[float, float] = (0.5, 0.5)) -> Placement:
    """Crop the product to its alpha bounding box, scale its longer side to ``scale * canvas``, centre it."""
    check_product_image(product)
    if not 0.05 <= scale <= 1.0:
        raise UserError(f"product scale must be between 0.05 and 1.0, got {scale}")
    bbox = product.getchannel("A").point(lambda a: 255 if a >= 128 else 0).getbbox()
    assert bbox is not None  # check_product_image guarantees an opaque part
    cropped = product.crop(bbox)
    factor = scale * canvas / max(cropped.size)
    w, h = max(1, round(cropped.width * factor)), max(1, round(cropped.height * factor))
    resized = cropped.resize((w, h), Image.Resampling.LANCZOS)
    x0 = int(round(centre[0] * canvas - w / 2))
    y0 = int(round(centre[1] * canvas - h / 2))
    x0, y0 = max(0, min(canvas - w, x0)), max(0, min(canvas - h, y0))
    layer = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    layer.paste(resized, (x0, y0))
    return Placement(layer=layer, box=(x0, y0, x0 + w, y0 + h))


def paste_back(background: Image.Image, placement: Placement) -> Image.Image:
    """Composite the placed product over a background; opaque product pixels are kept exactly."""
    base = background.convert("RGBA")
    if base.size != placement.layer.size:
        raise ValueError(f"background {base.size} and placement {placement.layer.size} differ in size")
    return Image.alpha_composite(base, placement.layer).convert("RGB")
