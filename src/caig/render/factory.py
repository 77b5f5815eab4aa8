"""One door to every renderer: ``make_renderer(profile.render)`` gives the backend the config names, so
PCPO, evaluation and serving switch between procedural and diffusers by config alone.

Both backends check their inputs the same way (cleaned prompt, product size, seeds) and return RGB images
carrying the AI-generated label (:mod:`caig.render.label`); save them with :func:`caig.render.label.save_png`.
"""

from __future__ import annotations

import time
from typing import Protocol

from PIL import Image

from caig.render.config import RenderConfig
from caig.render.label import label_image
from caig.render.prompt import check_batch, check_description, check_product_size


class Renderer(Protocol):
    """What every backend offers; images are ``image_size`` square, RGB, labelled."""

    name: str

    def render(self, product: Image.Image, description: str, seed: int | None = None) -> Image.Image: ...

    def render_batch(
        self, product: Image.Image, descriptions: list[str], seeds: list[int] | None = None
    ) -> list[Image.Image]: ...


class ProceduralBackend:
    """The procedural renderer behind the common interface: checked inputs, labelled outputs."""

    name = "procedural"

    def __init__(self, config: RenderConfig):
        from caig.render.procedural import ProceduralRenderer

        self.config = config
        self.renderer = ProceduralRenderer(size=config.image_size, product_scale=config.product_scale)

    def render(self, product: Image.Image, description: str, seed: int | None = None) -> Image.Image:
        check_description(description)
        return self.render_batch(product, [description], [self.config.seed if seed is None else seed])[0]

    def render_batch(
        self, product: Image.Image, descriptions: list[str], seeds: list[int] | None = None
    ) -> list[Image.Image]:
        seeds = (
            list(range(self.config.seed, self.config.seed + len(descriptions))) if seeds is None else seeds
        )
        prompts, seeds = check_batch(descriptions, seeds)
        check_product_size(product)
        images = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            started = time.perf_counter()
            image = self.renderer.render(product, prompt, seed)
            seconds = round(time.perf_counter() - started, 4)
            facts = {
                "model": "procedural",
                "seed": seed,
                "box": self.box(product, prompt),
                "seconds": seconds,
            }
            images.append(label_image(image, self.name, prompt, facts))
        return images

    def box(self, product: Image.Image, description: str) -> list[int]:
        """Where the procedural renderer puts the product for this description (x0, y0, x1, y1)."""
        from caig.world.descriptions import parse_description

        return list(self.renderer.placement(product, parse_description(description)).box)


def make_renderer(config: RenderConfig) -> Renderer:
    """The renderer ``config.backend`` names; the diffusers one loads its models from ``config``."""
    if config.backend == "diffusers":
        from caig.render.diffusers_backend import DiffusersRenderer

        return DiffusersRenderer.from_config(config)
    return ProceduralBackend(config)
