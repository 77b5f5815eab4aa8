"""Mismatched product inputs for PCPO (paper section 3.4): the chosen response stays, the product changes.

Visual-aware: 75% of the product image's 32x32 patches set to black, on the same grey backdrop the matched
input is shown on (``caig.mllm.encode.model_image``), so that only the product changes, not the backdrop. Textual-aware: the product's text
attributes replaced by another product's. The official code instead swapped the whole conversation,
including the other product's response, which contradicts Eq. 11; we follow the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from caig.mllm.encode import model_image


def mask_patches(
    image: Image.Image, rng: np.random.Generator, ratio: float = 0.75, patch: int = 32
) -> Image.Image:
    """Black out ``ratio`` of the image's ``patch`` x ``patch`` patches (the last row/column may be partial).

    A transparent product image is first composited onto the backdrop the model sees it on.
    """
    arr = np.array(model_image(image))
    h, w = arr.shape[:2]
    rows, cols = -(-h // patch), -(-w // patch)
    n = rows * cols
    chosen = rng.choice(n, size=int(round(ratio * n)), replace=False)
    for k in chosen:
        r, c = divmod(int(k), cols)
        arr[r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = 0
    return Image.fromarray(arr)


@dataclass(frozen=True)
class ProductInput:
    """What the prompt model sees of a product: its image and its text attributes (for f_instruct)."""

    product_id: str
    image: Image.Image
    attributes: dict[str, str]


def textual_mismatch(
    product: ProductInput, others: list[ProductInput], rng: np.random.Generator
) -> ProductInput:
    """The same image with another product's text attributes (a product of another category if any)."""
    pool = [o for o in others if o.product_id != product.product_id]
    if not pool:
        raise ValueError("textual mismatch needs at least one other product")
    different = [o for o in pool if o.attributes.get("category") != product.attributes.get("category")]
    other = (different or pool)[int(rng.integers(len(different or pool)))]
    return replace(product, attributes=dict(other.attributes))


def visual_mismatch(
    product: ProductInput, rng: np.random.Generator, ratio: float = 0.75, patch: int = 32
) -> ProductInput:
    """The same text with 75% of the image's 32x32 patches blacked out."""
    return replace(product, image=mask_patches(product.image, rng, ratio, patch))


def make_mismatch(
    product: ProductInput,
    others: list[ProductInput],
    rng: np.random.Generator,
    method: str,
    ratio: float = 0.75,
    patch: int = 32,
) -> tuple[ProductInput, str]:
    """One mismatched input per sample: a coin flip between visual and textual for full PCPO.

    ``method`` is ``pcpo`` (coin flip), ``pcpo-no-visual`` (textual only) or ``pcpo-no-textual`` (visual only).
    Returns the mismatched input and its kind (``visual`` or ``textual``).
    """
    if method == "pcpo":
        kind = "visual" if rng.random() < 0.5 else "textual"
    elif method == "pcpo-no-visual":
        kind = "textual"
    elif method == "pcpo-no-textual":
        kind = "visual"
    else:
        raise ValueError(f"no mismatch for method '{method}'; use pcpo, pcpo-no-visual or pcpo-no-textual")
    if kind == "visual":
        return visual_mismatch(product, rng, ratio, patch), kind
    return textual_mismatch(product, others, rng), kind
