"""NumPy canny: thin closed outlines, hysteresis thresholds as OpenCV's."""

from __future__ import annotations

import numpy as np
import pytest

from caig.render.canny import canny


def _square(value: int) -> np.ndarray:
    img = np.zeros((24, 24), dtype=np.uint8)
    img[6:18, 6:18] = value
    return img


def test_square_gives_a_thin_closed_outline():
    edges = canny(_square(200), 100, 200) > 0
    assert edges.any() and not edges[8:16, 8:16].any()  # nothing inside
    assert not edges[:3].any() and not edges[-3:].any()  # nothing far outside
    for row in range(7, 17):  # each row crosses the outline on both sides, one pixel thick
        assert edges[row, :12].sum() == 1 and edges[row, 12:].sum() == 1


def test_weak_edges_are_dropped_and_flat_images_have_none():
    assert not canny(_square(20), 100, 200).any()  # gradient 80 < low threshold
    assert not canny(np.full((16, 16), 128, np.uint8), 100, 200).any()


def test_weak_edge_kept_only_when_connected_to_a_strong_one():
    img = np.zeros((24, 24), dtype=np.uint8)
    img[:, 12:] = 60  # a vertical step: L1 Sobel gradient 240 (strong)
    img[:, 18:] = 90  # a second step of 30: gradient 120 (weak), not connected to the first
    edges = canny(img, 100, 200) > 0
    assert edges[:, 11:13].any() and not edges[:, 16:20].any()


def test_rejects_colour_arrays():
    with pytest.raises(ValueError, match="2-D"):
        canny(np.zeros((4, 4, 3), np.uint8), 100, 200)
