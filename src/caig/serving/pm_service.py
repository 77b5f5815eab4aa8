"""The prompt model as a service: background descriptions for a product (what ``caig serve pm`` answers).

A request instance names a product of the run's catalog (``product_id``) or gives its attributes
(``product``: title, category, tags, colour, price) and image (``image``, base64 PNG); ``n`` descriptions are
sampled at ``temperature`` (optional ``seed`` for repeatable answers) from the PM prompt
(``caig.mllm.instruct.pm_prompt``: a Table 4 template plus the attributes) with ``caig.mllm.generate``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PIL import Image

from caig.bandit.types import InvalidRequest
from caig.mllm.build import load_model
from caig.mllm.generate import generate
from caig.mllm.instruct import pm_prompt
from caig.profile import Profile
from caig.serving import payloads
from caig.serving.config import ServingConfig
from caig.serving.device import device_and_dtype
from caig.serving.locate import find_adapter, find_pm, find_world
from caig.world.loaded import World, load_world

log = logging.getLogger("caig.serving")


class PromptService:
    """A loaded PM (eval mode) with the profile's prompt settings and, optionally, the run's world."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        config: ServingConfig,
        attributes: list[str],
        world: World | None = None,
    ):
        self.model = model.eval()
        self.processor = processor
        self.config = config
        self.attributes = list(attributes)
        self.world = world

    @classmethod
    def from_run(cls, profile: Profile, run: Path, model: str = "") -> PromptService:
        """Load the PM found in ``run`` (or ``model`` / ``serving.pm_model``), its PCPO adapter and world."""
        config = profile.serving
        path = find_pm(run, model or config.pm_model)
        device, dtype = device_and_dtype(config)
        pm, processor = load_model(path, dtype)
        adapter = find_adapter(run) if config.pm_adapter == "latest" else None
        if adapter is not None:
            from peft import PeftModel

            pm = PeftModel.from_pretrained(pm, str(adapter)).merge_and_unload()
        log.info("PM from %s%s on %s (%s)", path, f" + adapter {adapter}" if adapter else "", device, dtype)
        world_dir = find_world(run)
        world = load_world(world_dir) if world_dir else None
        return cls(
            pm.to(device),
            processor,
            config,
            profile.mllm.instruct_attributes,
            world,
        )

    def describe(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One answer per instance: ``{"product_id"?, "descriptions": [n texts]}``."""
        requests = [self._read(item, f"instances[{i}].") for i, item in enumerate(items)]
        answers = []
        for product, image, n, temperature, seed in requests:
            question = pm_prompt(product, self.attributes, index=self.config.pm_template)
            texts = generate(
                self.model,
                self.processor,
                [image] * n,
                [question] * n,
                max_new_tokens=self.config.max_new_tokens,
                temperature=temperature,
                batch_size=n,
                seed=seed,
            )
            answer = {"descriptions": texts}
            if "product_id" in product:
                answer = {"product_id": product["product_id"], **answer}
            answers.append(answer)
        return answers

    def _read(self, item: dict[str, Any], where: str) -> tuple[dict, Image.Image, int, float, int | None]:
        config = self.config
        if item.get("product_id") is not None:
            product = payloads.world_product(self.world, item["product_id"], f"{where}product_id")
        elif item.get("product") is not None:
            product = payloads.product_attributes(item["product"], f"{where}product", self.attributes)
        else:
            raise InvalidRequest(f"{where}product_id", "missing; send a product_id or product attributes")
        if item.get("image") is not None:
            image = payloads.decode_image(item["image"], f"{where}image", config).convert("RGBA")
        elif "product_id" in product:
            image = self.world.product_image(product["product_id"])
        else:
            raise InvalidRequest(f"{where}image", "missing; send the product image as base64 PNG")
        n = payloads.integer(item.get("n", config.descriptions), f"{where}n", 1, config.max_descriptions)
        temperature = payloads.number(
            item.get("temperature", config.temperature), f"{where}temperature", 0, 5
        )
        seed = item.get("seed")
        seed = None if seed is None else payloads.integer(seed, f"{where}seed", 0, 2**32 - 1)
        return product, image, n, temperature, seed
