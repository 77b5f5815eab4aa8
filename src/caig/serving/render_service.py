"""The background generator as a service: product image + description -> labelled ad (``caig serve render``).

An instance gives the product (``product_id`` of the run's catalog, or ``product_image``: a base64 RGBA PNG
whose alpha is the product mask), a ``description`` and an optional ``seed``; the profile's renderer
(``caig.render.factory.make_renderer(profile.render)``: procedural or diffusers) paints the background. The
answer is the ad as base64 PNG carrying the AI-generated label (PNG text chunks + IPTC XMP), and the label.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from PIL import Image

from caig.bandit.types import InvalidRequest
from caig.errors import UserError
from caig.profile import Profile
from caig.render.factory import Renderer, make_renderer
from caig.render.label import LABEL_KEY, RENDER_KEY
from caig.render.prompt import check_description, check_product_size
from caig.serving import payloads
from caig.serving.config import ServingConfig
from caig.serving.locate import find_world
from caig.world.loaded import World, load_world

log = logging.getLogger("caig.serving")


class RenderService:
    """A renderer of the profile, with the run's world for product ids."""

    def __init__(self, renderer: Renderer, config: ServingConfig, world: World | None = None):
        self.renderer = renderer
        self.config = config
        self.world = world

    @classmethod
    def from_run(cls, profile: Profile, run: Path) -> RenderService:
        """The profile's renderer (models from ``profile.render``) and the world of ``run`` (if it has one)."""
        renderer = make_renderer(profile.render)
        log.info("renderer %s", renderer.name)
        world_dir = find_world(run)
        return cls(renderer, profile.serving, load_world(world_dir) if world_dir else None)

    def render(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per instance: ``{"product_id"?, "image": base64 PNG, "label": {"AI-Generated", "caig:render"}}``."""
        requests = [self._read(item, f"instances[{i}].") for i, item in enumerate(items)]
        answers = []
        for product_id, product, description, seed in requests:
            ad = self.renderer.render(product, description, seed)
            label = {LABEL_KEY: ad.info[LABEL_KEY], RENDER_KEY: json.loads(ad.info[RENDER_KEY])}
            answer = {"image": payloads.encode_png(ad), "label": label}
            answers.append({"product_id": product_id, **answer} if product_id else answer)
        return answers

    def _read(self, item: dict[str, Any], where: str) -> tuple[str | None, Image.Image, str, int | None]:
        product_id = None
        if item.get("product_image") is not None:
            field = f"{where}product_image"
            product = payloads.decode_image(item["product_image"], field, self.config).convert("RGBA")
        elif item.get("product_id") is not None:
            field = f"{where}product_id"
            product_id = payloads.world_product(self.world, item["product_id"], field)["product_id"]
            product = self.world.product_image(product_id)
        else:
            raise InvalidRequest(f"{where}product_id", "missing; send a product_id or a product_image")
        try:
            check_product_size(product)
        except UserError as err:
            raise InvalidRequest(field, str(err)) from None
        try:
            description = check_description(item.get("description"), f"{where}description")
        except UserError as err:
            raise InvalidRequest(
                f"{where}description", str(err).removeprefix(f"{where}description ")
            ) from None
        seed = item.get("seed")
        seed = None if seed is None else payloads.integer(seed, f"{where}seed", 0, 2**63 - 1)
        return product_id, product, description, seed
