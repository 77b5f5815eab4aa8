"""Product images: an RGBA drawing per category shape, in the product's colour, transparent around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    pen = _Pen(
        d=ImageDraw.Draw(img),
        s=s,
        main=_shade(colour.rgb, 1.0),
        dark=_shade(colour.rgb, 0.55 if colour.name != "black" else 2.5),
        light=_shade(colour.rgb, 1.35 if colour.name != "white" else 0.85),
        j=float(rng.uniform(-0.04, 0.04)),  # shape jitter
    )
    draw = _DRAW.get(category.shape)
    if draw is None:  # pragma: no cover - the vocabulary names every shape below
        raise ValueError(f"no drawing for shape '{category.shape}'")
    draw(pen)
    return img.resize((size, size), Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class _Pen:
    """What each shape is drawn with: the canvas, its side in pixels, the colour's three shades and the jitter.

    Coordinates are fractions of the side (``box``, ``poly`` scale them)."""

    d: ImageDraw.ImageDraw
    s: int
    main: tuple[int, int, int, int]
    dark: tuple[int, int, int, int]
    light: tuple[int, int, int, int]
    j: float

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (x0 * self.s, y0 * self.s, x1 * self.s, y1 * self.s)

    def poly(self, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x * self.s, y * self.s) for x, y in points]


def _draw_shoe(p: _Pen) -> None:
    p.d.polygon(
        p.poly([(0.1, 0.72), (0.12, 0.45), (0.45, 0.38 + p.j), (0.62, 0.52), (0.9, 0.6), (0.9, 0.72)]), p.main
    )
    p.d.rectangle(p.box(0.08, 0.72, 0.92, 0.8), p.light)
    p.d.line(p.poly([(0.3, 0.45), (0.5, 0.6)]), p.dark, width=max(1, p.s // 40))


def _draw_bag(p: _Pen) -> None:
    p.d.arc(p.box(0.3, 0.12 + p.j, 0.7, 0.55), 180, 360, p.dark, width=max(2, p.s // 25))
    p.d.polygon(p.poly([(0.2, 0.35), (0.8, 0.35), (0.88, 0.85), (0.12, 0.85)]), p.main)
    p.d.rectangle(p.box(0.44, 0.42, 0.56, 0.5), p.dark)


def _draw_watch(p: _Pen) -> None:
    p.d.rectangle(p.box(0.4, 0.05, 0.6, 0.95), p.dark)
    p.d.ellipse(p.box(0.25, 0.3 + p.j, 0.75, 0.8 + p.j), p.main)
    p.d.ellipse(p.box(0.31, 0.36 + p.j, 0.69, 0.74 + p.j), p.light)
    p.d.line(p.poly([(0.5, 0.55 + p.j), (0.5, 0.42 + p.j)]), p.dark, width=max(1, p.s // 60))


def _draw_lipstick(p: _Pen) -> None:
    p.d.rectangle(p.box(0.36, 0.5, 0.64, 0.92), (30, 30, 35, 255))
    p.d.rectangle(p.box(0.39, 0.3, 0.61, 0.5), p.light)
    p.d.polygon(p.poly([(0.41, 0.3), (0.59, 0.3), (0.59, 0.1 + p.j), (0.41, 0.2 + p.j)]), p.main)


def _draw_sofa(p: _Pen) -> None:
    p.d.rectangle(p.box(0.05, 0.4 + p.j, 0.95, 0.75), p.main)
    p.d.rectangle(p.box(0.02, 0.5, 0.16, 0.8), p.dark)
    p.d.rectangle(p.box(0.84, 0.5, 0.98, 0.8), p.dark)
    p.d.rectangle(p.box(0.1, 0.8, 0.14, 0.88), p.dark)
    p.d.rectangle(p.box(0.86, 0.8, 0.9, 0.88), p.dark)


def _draw_lamp(p: _Pen) -> None:
    p.d.polygon(p.poly([(0.3, 0.1 + p.j), (0.7, 0.1 + p.j), (0.82, 0.42), (0.18, 0.42)]), p.main)
    p.d.rectangle(p.box(0.47, 0.42, 0.53, 0.82), p.dark)
    p.d.ellipse(p.box(0.3, 0.8, 0.7, 0.92), p.dark)


def _draw_headphones(p: _Pen) -> None:
    p.d.arc(p.box(0.18, 0.12 + p.j, 0.82, 0.8), 180, 360, p.main, width=max(2, p.s // 14))
    p.d.rounded_rectangle(p.box(0.12, 0.45, 0.3, 0.8), radius=p.s // 20, fill=p.dark)
    p.d.rounded_rectangle(p.box(0.7, 0.45, 0.88, 0.8), radius=p.s // 20, fill=p.dark)


def _draw_perfume(p: _Pen) -> None:
    p.d.rectangle(p.box(0.43, 0.1 + p.j, 0.57, 0.3), (200, 180, 90, 255))
    p.d.rounded_rectangle(p.box(0.25, 0.3, 0.75, 0.9), radius=p.s // 10, fill=p.main)
    p.d.rounded_rectangle(p.box(0.33, 0.4, 0.5, 0.8), radius=p.s // 30, fill=p.light)


def _draw_mug(p: _Pen) -> None:
    p.d.ellipse(p.box(0.6, 0.35, 0.88, 0.7), p.dark)
    p.d.ellipse(p.box(0.66, 0.42, 0.82, 0.63), (0, 0, 0, 0))
    p.d.rectangle(p.box(0.18, 0.25 + p.j, 0.68, 0.85), p.main)
    p.d.rectangle(p.box(0.18, 0.25 + p.j, 0.68, 0.32 + p.j), p.light)


def _draw_backpack(p: _Pen) -> None:
    p.d.rounded_rectangle(p.box(0.22, 0.15 + p.j, 0.78, 0.9), radius=p.s // 8, fill=p.main)
    p.d.rounded_rectangle(p.box(0.32, 0.55, 0.68, 0.85), radius=p.s // 16, fill=p.dark)
    p.d.rectangle(p.box(0.45, 0.06 + p.j, 0.55, 0.16 + p.j), p.dark)


def _draw_pot(p: _Pen) -> None:
    p.d.ellipse(p.box(0.25, 0.05 + p.j, 0.55, 0.4), (40, 140, 60, 255))
    p.d.ellipse(p.box(0.45, 0.08, 0.78, 0.42), (30, 120, 50, 255))
    p.d.polygon(p.poly([(0.2, 0.4), (0.8, 0.4), (0.7, 0.9), (0.3, 0.9)]), p.main)
    p.d.rectangle(p.box(0.18, 0.38, 0.82, 0.46), p.dark)


def _draw_glasses(p: _Pen) -> None:
    p.d.ellipse(p.box(0.08, 0.38 + p.j, 0.45, 0.66), p.main)
    p.d.ellipse(p.box(0.55, 0.38 + p.j, 0.92, 0.66), p.main)
    p.d.ellipse(p.box(0.13, 0.42 + p.j, 0.4, 0.62), p.dark)
    p.d.ellipse(p.box(0.6, 0.42 + p.j, 0.87, 0.62), p.dark)
    p.d.line(p.poly([(0.45, 0.5 + p.j), (0.55, 0.5 + p.j)]), p.main, width=max(2, p.s // 40))


# One drawing per category shape (caig.world.vocabulary).
_DRAW: dict[str, Callable[[_Pen], None]] = {
    "shoe": _draw_shoe,
    "bag": _draw_bag,
    "watch": _draw_watch,
    "lipstick": _draw_lipstick,
    "sofa": _draw_sofa,
    "lamp": _draw_lamp,
    "headphones": _draw_headphones,
    "perfume": _draw_perfume,
    "mug": _draw_mug,
    "backpack": _draw_backpack,
    "pot": _draw_pot,
    "glasses": _draw_glasses,
}


def product_mask(image: Image.Image) -> Image.Image:
    """The product's mask: its alpha channel, binarised (255 product, 0 background)."""
    alpha = np.asarray(image.getchannel("A"))
    return Image.fromarray(np.where(alpha >= 128, 255, 0).astype(np.uint8), mode="L")
