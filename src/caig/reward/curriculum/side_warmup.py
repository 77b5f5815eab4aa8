"""A pixel-only warm-up that teaches a small RM to compare the LEFT ad with the RIGHT one.

A tiny LLaVA-NeXT trained straight on noisy click labels learns nothing about which side an ad is on: its
loss stays at ln 2 and it gives the same answer for both orders (docs/results/rm-paper-settings.md). Asked
first which ad of the pair is brighter (the mean luminance of each ad as the RM sees it: a label from the
pixels alone, no clicks, no descriptions, no oracle), it learns to compare the two sides within an epoch;
the click pairs then train a model that already looks at both. The warm-up relabels the training pairs'
own images, so it needs no other data.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
from PIL import Image

from caig.reward.data import PairSource

log = logging.getLogger("caig.reward")


@lru_cache(maxsize=65536)
def mean_luminance(path: str, side: int) -> float:
    """Mean luminance (ITU-R 601 L) of the ad at ``path`` resized to ``side`` x ``side``, as the RM sees it."""
    with Image.open(path) as image:
        grey = image.convert("RGB").resize((side, side), Image.Resampling.BICUBIC).convert("L")
        return float(np.asarray(grey, dtype=np.float32).mean())


def brightness_pairs(source: PairSource, image_side: int, max_pairs: int, seed: int) -> PairSource:
    """Up to ``max_pairs`` of ``source``'s pairs labelled by which ad is brighter (ties left out, logged).

    ``left_ctr`` / ``right_ctr`` hold the luminances scaled to [0, 1]; train with ``point_weight`` 0.
    """
    pairs = source.pairs
    if len(pairs) > max_pairs:
        pairs = pairs.sample(n=max_pairs, random_state=seed)
    pairs = pairs[
        ["product_id", "left_creative_id", "right_creative_id", "left_image_path", "right_image_path"]
    ]
    pairs = pairs.copy()
    for side in ("left", "right"):
        paths = pairs[f"{side}_image_path"]
        pairs[f"{side}_ctr"] = [mean_luminance(p, image_side) / 255.0 for p in paths]
    ties = pairs["left_ctr"] == pairs["right_ctr"]
    if ties.any():
        log.info("side warm-up: %d of %d pairs equally bright, left out", int(ties.sum()), len(pairs))
    pairs = pairs[~ties].reset_index(drop=True)
    pairs["label"] = np.where(pairs["left_ctr"] > pairs["right_ctr"], "left", "right")
    return PairSource(pairs, source.products)
