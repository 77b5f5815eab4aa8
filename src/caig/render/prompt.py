"""Renderer inputs checked before any expensive work: the description (cleaned into a prompt), the
product image's size, and the seeds of a batch. Each rejection names the field and the fix.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence

from PIL import Image

from caig.errors import UserError

MIN_PRODUCT_SIDE = 16  # below this a product has too few pixels to place and paste back
MAX_PRODUCT_SIDE = 4096  # above this the image is almost surely not a product cut-out (or is a mistake)
_QUOTES = "\"'`\u2018\u2019\u201c\u201d"


def clean_prompt(description: str) -> str:
    """The authors' prompt clean-up (REFERENCE.md): strip quotes, newlines and periods, collapse spaces."""
    text = re.sub(f"[{_QUOTES}.]", "", description)
    return re.sub(r"\s+", " ", text).strip()


def check_description(description: object, field: str = "description") -> str:
    """Return the cleaned prompt of a description, or raise if there is nothing to render."""
    if not isinstance(description, str):
        raise UserError(f"{field} must be text, got {type(description).__name__}")
    prompt = clean_prompt(description)
    if not prompt:
        raise UserError(
            f"{field} is empty (or only quotes, periods and spaces); "
            "pass the background to paint, e.g. 'on white marble, soft daylight'"
        )
    return prompt


def check_product_size(product: Image.Image) -> None:
    """Reject product images too small to place or too large to be a product cut-out."""
    w, h = product.size
    if min(w, h) < MIN_PRODUCT_SIDE or max(w, h) > MAX_PRODUCT_SIDE:
        raise UserError(
            f"product image is {w}x{h} pixels; it must be between {MIN_PRODUCT_SIDE} and "
            f"{MAX_PRODUCT_SIDE} pixels per side: resize the cut-out before rendering"
        )


def check_batch(descriptions: Sequence[str], seeds: Sequence[int]) -> tuple[list[str], list[int]]:
    """Cleaned prompts and plain-int seeds of a batch; descriptions and seeds must pair up one to one."""
    if isinstance(descriptions, str):
        raise UserError("descriptions must be a list of texts, got one text; wrap it in a list")
    if len(descriptions) == 0:
        raise UserError("descriptions is empty; pass at least one background description")
    if len(seeds) != len(descriptions):
        raise UserError(
            f"got {len(descriptions)} descriptions but {len(seeds)} seeds; pass one seed per description"
        )
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
            raise UserError(f"seeds[{i}] must be an integer in [0, 2**63), got {seed!r}")
    prompts = [check_description(d, f"descriptions[{i}]") for i, d in enumerate(descriptions)]
    return prompts, [int(s) for s in seeds]
