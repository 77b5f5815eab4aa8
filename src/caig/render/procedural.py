"""The procedural renderer: draws a description's scene, surface, props, palette, lighting, style and
eye-catching effects around the pasted product. Deterministic for a seed, fast on a CPU, and legible to an
image model, so a reward model can learn from pixels what the description said. It is the world's default
renderer and the demo's; diffusers inpainting (``caig.render.diffusers``) is the production one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from caig.render.placement import Placement, paste_back, place_product
from caig.world.descriptions import ParsedDescription, parse_description
from caig.world.vocabulary import Term

RGB = tuple[int, int, int]
_FRAMING_SCALE = {
    "macro close-up": 1.15,
    "tabletop shot": 0.85,
    "eye-level view": 0.72,
    "wide room view": 0.5,
}
_NEUTRAL: RGB = (170, 165, 160)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def _scaled(rgb: RGB, f: float) -> RGB:
    return tuple(int(max(0, min(255, c * f))) for c in rgb)  # type: ignore[return-value]


class ProceduralRenderer:
    """Draws ads of ``size`` x ``size`` pixels; ``product_scale`` is the placement scale (paper: 0.78)."""

    name = "procedural"

    def __init__(self, size: int = 128, product_scale: float = 0.78):
        self.size = size
        self.product_scale = product_scale

    def render(self, product: Image.Image, description: str, seed: int = 0) -> Image.Image:
        """One ad: the background a description names, with the untouched product pasted in the centre."""
        parsed = parse_description(description)
        placement = self.placement(product, parsed)
        background = self.background(parsed, placement, np.random.default_rng(seed))
        return paste_back(background, placement)

    def placement(self, product: Image.Image, parsed: ParsedDescription) -> Placement:
        """Where the product goes for this description: the framing term scales it (a close-up is larger)."""
        framing = parsed.first("framing")
        scale = self.product_scale * (_FRAMING_SCALE[framing.text] if framing else 1.0)
        return place_product(product, self.size, min(scale, 0.95), centre=(0.5, 0.55))

    def render_batch(
        self, product: Image.Image, descriptions: list[str], seeds: list[int]
    ) -> list[Image.Image]:
        """Several descriptions of one product (the PCPO loop renders two per product per round)."""
        return [self.render(product, d, s) for d, s in zip(descriptions, seeds, strict=True)]

    def background(
        self, parsed: ParsedDescription, placement: Placement, rng: np.random.Generator
    ) -> Image.Image:
        """The background alone, in drawing order: scene, surface, props, palette, lighting, style, effects."""
        palette = parsed.first("palette")
        scene = parsed.first("scene")
        pal: RGB = palette.rgb if palette else _NEUTRAL
        base: RGB = _mix(scene.rgb, pal, 0.4) if scene else pal
        img = _gradient(self.size, _scaled(base, 1.12), _scaled(base, 0.9))
        draw = ImageDraw.Draw(img)
        if scene:
            _draw_scene(draw, scene, pal, self.size, rng)
        if surface := parsed.first("surface"):
            _draw_surface(draw, surface, self.size, rng)
        for prop in parsed.group("prop")[:2]:
            _draw_prop(draw, prop, self.size, rng)
        img = Image.blend(img, Image.new("RGB", img.size, pal), 0.22 if palette else 0.0)
        if (framing := parsed.first("framing")) and framing.text == "macro close-up":
            img = img.filter(ImageFilter.GaussianBlur(self.size / 48))
        if lighting := parsed.first("lighting"):
            img = _apply_lighting(img, lighting, rng)
        if style := parsed.first("style"):
            img = _apply_style(img, style, rng)
        for effect in parsed.group("eye_catching"):
            img = _apply_eye_catching(img, effect, placement, rng)
        return img


def _gradient(size: int, top: RGB, bottom: RGB) -> Image.Image:
    t = np.linspace(0, 1, size)[:, None, None]
    arr = np.array(top)[None, None, :] * (1 - t) + np.array(bottom)[None, None, :] * t
    return Image.fromarray(np.repeat(arr, size, axis=1).astype(np.uint8), mode="RGB")


def _draw_scene(d: ImageDraw.ImageDraw, scene: Term, pal: RGB, n: int, rng: np.random.Generator) -> None:
    """The scene's backdrop on the ``n`` x ``n`` canvas, in its colour mixed with the palette (a scene with no
    drawing leaves the canvas as it is)."""
    c = _mix(scene.rgb, pal, 0.3)
    dark, light = _scaled(c, 0.6), _scaled(c, 1.25)
    draw = _SCENES.get(scene.text)
    if draw is not None:
        draw(d, n, rng, c, dark, light)


def _scene_kitchen_counter(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    for x in range(0, n, max(4, n // 10)):
        d.line([(x, 0), (x, int(0.6 * n))], fill=light, width=1)
    for y in range(0, int(0.6 * n), max(4, n // 10)):
        d.line([(0, y), (n, y)], fill=light, width=1)
    d.rectangle([0, int(0.6 * n), n, n], fill=dark)


def _scene_living_room(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    d.rectangle([int(0.08 * n), int(0.1 * n), int(0.35 * n), int(0.45 * n)], fill=(190, 220, 240))
    d.rectangle(
        [int(0.65 * n), int(0.15 * n), int(0.9 * n), int(0.35 * n)], outline=dark, width=max(1, n // 40)
    )
    d.rectangle([0, int(0.7 * n), n, n], fill=(150, 105, 70))


def _scene_sandy_beach(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    d.rectangle([0, 0, n, int(0.45 * n)], fill=(150, 205, 240))
    d.rectangle([0, int(0.45 * n), n, int(0.58 * n)], fill=(40, 110, 190))
    d.rectangle([0, int(0.58 * n), n, n], fill=c)


def _scene_pine_forest(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    d.rectangle([0, int(0.75 * n), n, n], fill=(90, 70, 40))
    for i in range(7):
        x = (i + rng.uniform(0, 0.5)) * n / 6
        d.polygon(
            [(x - 0.1 * n, 0.78 * n), (x + 0.1 * n, 0.78 * n), (x, rng.uniform(0.05, 0.3) * n)], fill=dark
        )


def _scene_city_street(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    x = 0
    while x < n:
        w = int(rng.uniform(0.12, 0.22) * n)
        top = int(rng.uniform(0.1, 0.45) * n)
        d.rectangle([x, top, x + w - 2, int(0.8 * n)], fill=_scaled(c, rng.uniform(0.6, 1.0)))
        for wy in range(top + 3, int(0.78 * n), max(3, n // 16)):
            d.point([(x + w // 3, wy), (x + 2 * w // 3, wy)], fill=(250, 220, 120))
        x += w
    d.rectangle([0, int(0.8 * n), n, n], fill=(45, 45, 50))


def _scene_photo_studio(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    d.ellipse([-n // 2, int(0.65 * n), int(1.5 * n), int(1.6 * n)], fill=light)


def _scene_bathroom_vanity(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    for x in range(0, n, max(4, n // 8)):
        d.line([(x, 0), (x, n)], fill=light, width=1)
    d.ellipse([int(0.3 * n), int(0.02 * n), int(0.7 * n), int(0.4 * n)], fill=(215, 235, 245), outline=dark)
    d.rectangle([0, int(0.72 * n), n, n], fill=(245, 245, 245))


def _scene_office_desk(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    d.rectangle([int(0.62 * n), int(0.08 * n), int(0.95 * n), int(0.38 * n)], fill=(30, 30, 40))
    d.rectangle([0, int(0.68 * n), n, n], fill=dark)


def _scene_flower_garden(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    d.rectangle([0, int(0.4 * n), n, n], fill=c)
    for _ in range(40):
        x, y = rng.uniform(0, n), rng.uniform(0.4 * n, n)
        r = n / 50
        d.ellipse([x - r, y - r, x + r, y + r], fill=[(240, 80, 120), (250, 220, 60), (250, 250, 250)][_ % 3])


def _scene_snowy_mountain(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    for x0 in (-0.2, 0.25, 0.6):
        peak = (x0 + 0.3) * n
        d.polygon([(x0 * n, 0.75 * n), (peak, 0.12 * n), (peak + 0.3 * n, 0.75 * n)], fill=(120, 130, 150))
        d.polygon(
            [(peak - 0.08 * n, 0.26 * n), (peak, 0.12 * n), (peak + 0.08 * n, 0.26 * n)], fill=(250, 250, 255)
        )
    d.rectangle([0, int(0.75 * n), n, n], fill=(245, 248, 255))


def _scene_gym_floor(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    d.rectangle([0, int(0.62 * n), n, n], fill=(40, 40, 45))
    for y in (0.7, 0.85):
        d.line([(0, y * n), (n, y * n)], fill=(240, 130, 30), width=max(1, n // 50))
    for x in (0.06, 0.84):
        d.rectangle([x * n, 0.5 * n, (x + 0.1) * n, 0.53 * n], fill=(20, 20, 20))
        d.rectangle([x * n, 0.45 * n, (x + 0.03) * n, 0.58 * n], fill=(20, 20, 20))


def _scene_cafe_table(
    d: ImageDraw.ImageDraw, n: int, rng: np.random.Generator, c: RGB, dark: RGB, light: RGB
) -> None:
    d.ellipse([-int(0.1 * n), int(0.66 * n), int(1.1 * n), int(1.2 * n)], fill=dark)
    d.rectangle([int(0.05 * n), int(0.1 * n), int(0.2 * n), int(0.3 * n)], fill=(230, 210, 170))


# One backdrop per scene term (caig.world.vocabulary), each drawn with (draw, side, rng, colour, dark, light).
_SCENES: dict[str, Callable[[ImageDraw.ImageDraw, int, np.random.Generator, RGB, RGB, RGB], None]] = {
    "kitchen counter": _scene_kitchen_counter,
    "living room": _scene_living_room,
    "sandy beach": _scene_sandy_beach,
    "pine forest": _scene_pine_forest,
    "city street": _scene_city_street,
    "photo studio": _scene_photo_studio,
    "bathroom vanity": _scene_bathroom_vanity,
    "office desk": _scene_office_desk,
    "flower garden": _scene_flower_garden,
    "snowy mountain": _scene_snowy_mountain,
    "gym floor": _scene_gym_floor,
    "cafe table": _scene_cafe_table,
}


_SURFACE_STYLE = {
    "white marble": "veins",
    "oak wood": "stripes",
    "raw concrete": "noise",
    "soft velvet": "sheen",
    "woven linen": "check",
    "smooth stone": "blobs",
}


def _draw_surface(d: ImageDraw.ImageDraw, surface: Term, n: int, rng: np.random.Generator) -> None:
    top = int(0.78 * n)
    c = surface.rgb
    d.rectangle([0, top, n, n], fill=c)
    kind = _SURFACE_STYLE[surface.text]
    if kind == "veins":
        for _ in range(3):
            y = rng.uniform(top, n)
            d.line(
                [(0, y), (n / 2, y + rng.uniform(-4, 4)), (n, y + rng.uniform(-6, 6))], fill=(150, 150, 155)
            )
    elif kind == "stripes":
        for y in range(top, n, 3):
            d.line([(0, y), (n, y)], fill=_scaled(c, 0.75))
    elif kind == "noise":
        for _ in range(n):
            x, y = rng.uniform(0, n), rng.uniform(top, n)
            d.point((x, y), fill=_scaled(c, rng.uniform(0.6, 1.3)))
    elif kind == "sheen":
        d.rectangle([0, top, n, top + max(1, (n - top) // 4)], fill=_scaled(c, 1.6))
    elif kind == "check":
        for x in range(0, n, 4):
            d.line([(x, top), (x, n)], fill=_scaled(c, 0.85))
    elif kind == "blobs":
        for _ in range(6):
            x, y, r = rng.uniform(0, n), rng.uniform(top, n), n / 20
            d.ellipse([x - r, y - r / 2, x + r, y + r / 2], fill=_scaled(c, 1.3))


def _draw_prop(d: ImageDraw.ImageDraw, prop: Term, n: int, rng: np.random.Generator) -> None:
    side = rng.choice([0.0, 1.0])
    if prop.size == "small":
        for _ in range(6):
            x = (rng.uniform(0.02, 0.2) if side == 0 else rng.uniform(0.8, 0.98)) * n
            y, r = rng.uniform(0.8, 0.95) * n, n / 36
            d.ellipse([x - r, y - r, x + r, y + r], fill=prop.rgb, outline=_scaled(prop.rgb, 0.6))
    elif prop.size == "medium":
        x = (0.03 if side == 0 else 0.78) * n
        d.rectangle([x, 0.6 * n, x + 0.18 * n, 0.92 * n], fill=prop.rgb, outline=_scaled(prop.rgb, 0.5))
        d.rectangle([x, 0.68 * n, x + 0.18 * n, 0.7 * n], fill=_scaled(prop.rgb, 1.4))
    else:
        for cx in (0.0, 1.0):
            d.ellipse(
                [(cx - 0.25) * n, 0.2 * n, (cx + 0.25) * n, 1.0 * n],
                fill=prop.rgb,
                outline=_scaled(prop.rgb, 0.6),
            )


def _apply_lighting(img: Image.Image, lighting: Term, rng: np.random.Generator) -> Image.Image:
    a = np.asarray(img).astype(np.float32)
    n = a.shape[0]
    yy, xx = np.mgrid[0:n, 0:n] / n
    name = lighting.text
    if name == "soft daylight":
        a = a * 1.08 + 12
    elif name == "golden hour":
        a = a * np.array([1.12, 0.92, 0.68]) * (1.1 - 0.3 * yy[..., None])
    elif name == "studio softbox":
        glow = np.exp(-(((xx - 0.5) ** 2) + (yy - 0.1) ** 2) / 0.08)[..., None]
        a = a * 0.9 + 110 * glow
    elif name == "moody shadows":
        vignette = 1 - 0.9 * (((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.5)
        a = a * 0.5 * np.clip(vignette, 0.2, 1)[..., None]
    elif name == "candlelight":
        glow = sum(np.exp(-(((xx - cx) ** 2) + (yy - 0.3) ** 2) / 0.01) for cx in (0.15, 0.85))[..., None]
        a = a * 0.55 + glow * np.array([255, 170, 70])
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), mode="RGB")


def _apply_style(img: Image.Image, style: Term, rng: np.random.Generator) -> Image.Image:
    n = img.size[0]
    name = style.text
    if name == "minimalist":
        mean = tuple(int(v) for v in np.asarray(img).reshape(-1, 3).mean(0))
        return Image.blend(img, Image.new("RGB", img.size, mean), 0.5)
    d = ImageDraw.Draw(img)
    if name == "luxurious":
        d.rectangle([0, 0, n - 1, n - 1], outline=style.rgb, width=max(2, n // 25))
    elif name == "rustic":
        for _ in range(n * 2):
            x, y = rng.uniform(0, n), rng.uniform(0, n)
            d.point((x, y), fill=style.rgb)
    elif name == "playful":
        for _ in range(25):
            x, y, r = rng.uniform(0, n), rng.uniform(0, n), n / 60
            colour = [(250, 90, 180), (80, 200, 250), (250, 220, 60)][int(rng.integers(3))]
            d.rectangle([x - r, y - r, x + r, y + r], fill=colour)
    elif name == "cinematic":
        bar = n // 10
        d.rectangle([0, 0, n, bar], fill=(0, 0, 0))
        d.rectangle([0, n - bar, n, n], fill=(0, 0, 0))
    return img


def _apply_eye_catching(
    img: Image.Image, effect: Term, placement: Placement, rng: np.random.Generator
) -> Image.Image:
    n = img.size[0]
    name = effect.text
    if name == "neon glow":
        halo = placement.mask.filter(ImageFilter.MaxFilter(max(3, (n // 16) | 1)))
        halo = halo.filter(ImageFilter.GaussianBlur(n / 40))
        return Image.composite(Image.new("RGB", img.size, effect.rgb), img, halo)
    d = ImageDraw.Draw(img)
    if name == "sparkling glitter":
        for _ in range(70):
            x, y, r = rng.uniform(0, n), rng.uniform(0, n), rng.uniform(0.5, 1.5) * n / 100
            d.ellipse([x - r, y - r, x + r, y + r], fill=effect.rgb)
            d.line([(x - 3 * r, y), (x + 3 * r, y)], fill=effect.rgb)
    elif name == "fireworks burst":
        for cx, cy in ((0.2 * n, 0.2 * n), (0.8 * n, 0.15 * n)):
            for k in range(12):
                ang = 2 * np.pi * k / 12
                d.line(
                    [(cx, cy), (cx + 0.15 * n * np.cos(ang), cy + 0.15 * n * np.sin(ang))],
                    fill=[effect.rgb, (60, 220, 255), (255, 80, 80)][k % 3],
                    width=max(1, n // 64),
                )
    elif name == "bold sale banner":
        d.rectangle([0, 0, n, int(0.16 * n)], fill=effect.rgb)
        for i in range(4):
            x = (0.12 + 0.2 * i) * n
            d.rectangle([x, 0.04 * n, x + 0.12 * n, 0.11 * n], fill=(255, 255, 255))
    elif name == "dazzling lens flare":
        for t, r in ((0.15, 0.12), (0.35, 0.05), (0.55, 0.08), (0.8, 0.04)):
            x, y = t * n, (0.9 - t * 0.8) * n
            d.ellipse([x - r * n, y - r * n, x + r * n, y + r * n], outline=effect.rgb, width=max(1, n // 48))
        d.ellipse([0.05 * n, 0.7 * n, 0.25 * n, 0.9 * n], fill=effect.rgb)
    return img
