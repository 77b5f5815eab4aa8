"""The pixel-only side warm-up: brightness labels from the ads as the RM sees them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from PIL import Image

from caig.reward.curriculum.side_warmup import brightness_pairs, mean_luminance
from caig.reward.data import PairSource


def _source(tmp_path, greys: list[tuple[int, int]]) -> PairSource:
    rows = []
    for i, (left, right) in enumerate(greys):
        paths = []
        for side, grey in (("l", left), ("r", right)):
            path = tmp_path / f"{i}{side}.png"
            Image.new("RGB", (64, 64), (grey, grey, grey)).save(path)
            paths.append(str(path))
        rows.append(("P0", f"C{i}l", f"C{i}r", 0.01, 0.02, "right", *paths))
    columns = ["product_id", "left_creative_id", "right_creative_id", "left_ctr", "right_ctr", "label"]
    pairs = pd.DataFrame(rows, columns=[*columns, "left_image_path", "right_image_path"])
    return PairSource(pairs, pd.DataFrame(index=pd.Index(["P0"], name="product_id")))


def test_labels_name_the_brighter_ad_and_ties_are_left_out(tmp_path) -> None:
    source = _source(tmp_path, [(200, 50), (10, 90), (120, 120)])
    warm = brightness_pairs(source, image_side=32, max_pairs=10, seed=0)
    assert warm.pairs["label"].tolist() == ["left", "right"]  # the logged labels ("right") are not used
    assert warm.pairs["left_ctr"].tolist() == [200 / 255, 10 / 255]
    assert mean_luminance(str(tmp_path / "0l.png"), 32) == 200.0


def test_at_most_max_pairs_drawn_reproducibly(tmp_path) -> None:
    source = _source(tmp_path, [(g, 255 - g) for g in range(0, 200, 20)])
    first = brightness_pairs(source, 32, max_pairs=4, seed=3).pairs
    again = brightness_pairs(dataclasses.replace(source), 32, max_pairs=4, seed=3).pairs
    assert len(first) == 4 and first.equals(again)
    assert np.all((first["left_ctr"] > first["right_ctr"]) == (first["label"] == "left"))
