"""Canny edge detection in NumPy, matching OpenCV's ``cv2.Canny(image, low, high)`` defaults.

The ControlNet canny model was trained on OpenCV edges (3x3 Sobel, L1 gradient magnitude, no pre-blur).
OpenCV is not a dependency of caig, so this is the same algorithm in ~50 lines: Sobel, non-maximum
suppression along four directions, and hysteresis (8-connected weak edges kept when they touch a strong one).
"""

from __future__ import annotations

import numpy as np

_TAN_22_5 = 0.4142135623730951


def _sobel(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.pad(img, 1, mode="reflect")  # OpenCV's BORDER_REFLECT_101
    h, w = img.shape
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :w] + 2 * p[1:-1, :w] + p[2:, :w])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:h, :-2] + 2 * p[:h, 1:-1] + p[:h, 2:])
    return gx, gy


def _non_max_suppression(mag: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Keep pixels that are a local maximum of ``mag`` across the edge (gradient direction, 4 bins)."""
    ax, ay = np.abs(gx), np.abs(gy)
    p = np.pad(mag, 1)
    h, w = mag.shape

    def shifted(dy: int, dx: int) -> np.ndarray:
        return p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    horizontal = ay <= _TAN_22_5 * ax  # gradient along x: compare left/right
    vertical = ay > ax / _TAN_22_5  # gradient along y: compare up/down
    diagonal = ~(horizontal | vertical)
    same_sign = (gx * gy) >= 0
    keep = np.zeros_like(mag, dtype=bool)
    keep |= horizontal & (mag > shifted(0, -1)) & (mag >= shifted(0, 1))
    keep |= vertical & (mag > shifted(-1, 0)) & (mag >= shifted(1, 0))
    keep |= diagonal & same_sign & (mag > shifted(-1, -1)) & (mag >= shifted(1, 1))
    keep |= diagonal & ~same_sign & (mag > shifted(-1, 1)) & (mag >= shifted(1, -1))
    return keep


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Weak pixels 8-connected to a strong one, found by connected-component labelling."""
    try:
        from scipy import ndimage
    except ImportError:  # scipy-free machines (GPU benchmark images): grow strong edges until stable
        edges = strong.copy()
        while True:
            p = np.pad(edges, 1)
            grown = np.zeros_like(edges)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    grown |= p[1 + dy : 1 + dy + edges.shape[0], 1 + dx : 1 + dx + edges.shape[1]]
            grown &= weak
            if np.array_equal(grown, edges):
                return edges
            edges = grown
    labels, _ = ndimage.label(weak, structure=np.ones((3, 3), dtype=bool))
    kept = np.unique(labels[strong & weak])
    return np.isin(labels, kept[kept > 0])


def canny(gray: np.ndarray, low: float, high: float) -> np.ndarray:
    """Edges of a 2-D uint8 image as a uint8 array of 0 and 255 (``cv2.Canny(gray, low, high)``)."""
    if gray.ndim != 2:
        raise ValueError(f"canny needs a 2-D grayscale array, got shape {gray.shape}")
    gx, gy = _sobel(gray.astype(np.int32))
    mag = np.abs(gx) + np.abs(gy)  # L1 norm, OpenCV's default
    candidates = _non_max_suppression(mag, gx, gy) & (mag > low)
    edges = _hysteresis(candidates & (mag > high), candidates)
    return np.where(edges, 255, 0).astype(np.uint8)
