"""Product images: an RGBA drawing per category shape, in the product's colour, transparent around it."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from caig.world.vocabulary import Category, Colour


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int, int]:
    return (*(int(max(0, min(255, c * factor))) for c in rgb), 255)


def draw_product(category: Category, colour: Colour, size: int, rng: np.random.Generator) -> Image.Image:
    """Draw one product of ``category`` in ``colour`` on a transparent ``size`` x ``size`` canvas.

    The shape tells the category apart; a darker accent and a small random variation make products of
    the same category and colour differ.
    """
    scale = 4  # draw large, then downsample for smooth edges
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    main = _shade(colour.rgb, 1.0)
    dark = _shade(colour.rgb, 0.55 if colour.name != "black" else 2.5)
    light = _shade(colour.rgb, 1.35 if colour.name != "white" else 0.85)
    j = float(rng.uniform(-0.04, 0.04))  # shape jitter

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (x0 * s, y0 * s, x1 * s, y1 * s)

    def poly(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x * s, y * s) for x, y in points]

    shape = category.shape
    if shape == "shoe":
        d.polygon(poly([(0.1, 0.72), (0.12, 0.45), (0.45, 0.38 + j), (0.62, 0.52), (0.9, 0.6), (0.9, 0.72)]), main)
        d.rectangle(box(0.08, 0.72, 0.92, 0.8), light)
        d.line(poly([(0.3, 0.45), (0.5, 0.6)]), dark, width=max(1, s // 40))
    elif shape == "bag":
        d.arc(box(0.3, 0.12 + j, 0.7, 0.55), 180, 360, dark, width=max(2, s // 25))
        d.polygon(poly([(0.2, 0.35), (0.8, 0.35), (0.88, 0.85), (0.12, 0.85)]), main)
        d.rectangle(box(0.44, 0.42, 0.56, 0.5), dark)
    elif shape == "watch":
        d.rectangle(box(0.4, 0.05, 0.6, 0.95), dark)
        d.ellipse(box(0.25, 0.3 + j, 0.75, 0.8 + j), main)
        d.ellipse(box(0.31, 0.36 + j, 0.69, 0.74 + j), light)
        d.line(poly([(0.5, 0.55 + j), (0.5, 0.42 + j)]), dark, width=max(1, s // 60))
    elif shape == "lipstick":
        d.rectangle(box(0.36, 0.5, 0.64, 0.92), (30, 30, 35, 255))
        d.rectangle(box(0.39, 0.3, 0.61, 0.5), light)
        d.polygon(poly([(0.41, 0.3), (0.59, 0.3), (0.59, 0.1 + j), (0.41, 0.2 + j)]), main)
    elif shape == "sofa":
        d.rectangle(box(0.05, 0.4 + j, 0.95, 0.75), main)
        d.rectangle(box(0.02, 0.5, 0.16, 0.8), dark)
        d.rectangle(box(0.84, 0.5, 0.98, 0.8), dark)
        d.rectangle(box(0.1, 0.8, 0.14, 0.88), dark)
        d.rectangle(box(0.86, 0.8, 0.9, 0.88), dark)
    elif shape == "lamp":
        d.polygon(poly([(0.3, 0.1 + j), (0.7, 0.1 + j), (0.82, 0.42), (0.18, 0.42)]), main)
        d.rectangle(box(0.47, 0.42, 0.53, 0.82), dark)
        d.ellipse(box(0.3, 0.8, 0.7, 0.92), dark)
    elif shape == "headphones":
        d.arc(box(0.18, 0.12 + j, 0.82, 0.8), 180, 360, main, width=max(2, s // 14))
        d.rounded_rectangle(box(0.12, 0.45, 0.3, 0.8), radius=s // 20, fill=dark)
        d.rounded_rectangle(box(0.7, 0.45, 0.88, 0.8), radius=s // 20, fill=dark)
    elif shape == "perfume":
        d.rectangle(box(0.43, 0.1 + j, 0.57, 0.3), (200, 180, 90, 255))
        d.rounded_rectangle(box(0.25, 0.3, 0.75, 0.9), radius=s // 10, fill=main)
        d.rounded_rectangle(box(0.33, 0.4, 0.5, 0.8), radius=s // 30, fill=light)
    elif shape == "mug":
        d.ellipse(box(0.6, 0.35, 0.88, 0.7), dark)
        d.ellipse(box(0.66, 0.42, 0.82, 0.63), (0, 0, 0, 0))
        d.rectangle(box(0.18, 0.25 + j, 0.68, 0.85), main)
        d.rectangle(box(0.18, 0.25 + j, 0.68, 0.32 + j), light)
    elif shape == "backpack":
        d.rounded_rectangle(box(0.22, 0.15 + j, 0.78, 0.9), radius=s // 8, fill=main)
        d.rounded_rectangle(box(0.32, 0.55, 0.68, 0.85), radius=s // 16, fill=dark)
        d.rectangle(box(0.45, 0.06 + j, 0.55, 0.16 + j), dark)
    elif shape == "pot":
        d.ellipse(box(0.25, 0.05 + j, 0.55, 0.4), (40, 140, 60, 255))
        d.ellipse(box(0.45, 0.08, 0.78, 0.42), (30, 120, 50, 255))
        d.polygon(poly([(0.2, 0.4), (0.8, 0.4), (0.7, 0.9), (0.3, 0.9)]), main)
        d.rectangle(box(0.18, 0.38, 0.82, 0.46), dark)
    elif shape == "glasses":
        d.ellipse(box(0.08, 0.38 + j, 0.45, 0.66), main)
        d.ellipse(box(0.55, 0.38 + j, 0.92, 0.66), main)
        d.ellipse(box(0.13, 0.42 + j, 0.4, 0.62), dark)
        d.ellipse(box(0.6, 0.42 + j, 0.87, 0.62), dark)
        d.line(poly([(0.45, 0.5 + j), (0.55, 0.5 + j)]), main, width=max(2, s // 40))
    else:  # pragma: no cover - the vocabulary names every shape above
        raise ValueError(f"no drawing for shape '{shape}'")
    return img.resize((size, size), Image.Resampling.LANCZOS)


def product_mask(image: Image.Image) -> Image.Image:
    """The product's mask: its alpha channel, binarised (255 product, 0 background)."""
    alpha = np.asarray(image.getchannel("A"))
    return Image.fromarray(np.where(alpha >= 128, 255, 0).astype(np.uint8), mode="L")
