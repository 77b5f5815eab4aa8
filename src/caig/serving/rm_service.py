"""The reward model as a service: which ad of a product gets more clicks (what ``caig serve rm`` answers).

An instance names the product (``product_id`` of the run's catalog, or ``product`` attributes) and K >= 2
candidates, as base64 PNGs (``images``) or creatives of the run's world (``creative_ids``). Every ordered pair
is scored in both orders (``RewardScorer.pair_matrix``) and the K candidates are ranked by a Bradley-Terry
fit (``caig.reward.rank``); for a pair, ``p_first_better`` is the swap-consistent P(first beats second).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from caig.bandit.types import InvalidRequest
from caig.profile import Profile
from caig.reward.rank import rank_from_matrix
from caig.reward.scoring import RewardScorer
from caig.serving import payloads
from caig.serving.config import ServingConfig
from caig.serving.device import device_and_dtype
from caig.serving.locate import find_rm, find_world
from caig.world.loaded import World, load_world

log = logging.getLogger("caig.serving")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class RewardService:
    """A loaded RM scorer with the run's world (for product and creative ids)."""

    def __init__(self, scorer: RewardScorer, config: ServingConfig, world: World | None = None):
        self.scorer = scorer
        self.config = config
        self.world = world
        self.creatives = world.creatives.set_index("creative_id") if world is not None else None
        self.attributes = list(scorer.config.attributes)

    @classmethod
    def from_run(cls, profile: Profile, run: Path, model: str = "") -> RewardService:
        """Load the RM found in ``run`` (or ``model`` / ``serving.rm_model``) and the run's world."""
        config = profile.serving
        path = find_rm(run, model or config.rm_model)
        device, dtype = device_and_dtype(config)
        scorer = RewardScorer.from_dir(path, device)
        scorer.model.to(DTYPES[dtype])
        log.info("RM from %s on %s (%s)", path, device, dtype)
        world_dir = find_world(run)
        return cls(scorer, config, load_world(world_dir) if world_dir else None)

    def rank(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per instance: ``{"ids", "order", "ranked_ids", "scores", "win_prob"}`` (+ ``p_first_better`` for K=2)."""
        answers = []
        for i, item in enumerate(items):
            product, ids, images = self._read(item, f"instances[{i}].")
            ranking = rank_from_matrix(self.scorer.pair_matrix(product, images))
            answer = {
                "ids": ids,
                "order": ranking.order,
                "ranked_ids": [ids[j] for j in ranking.order],
                "scores": [float(s) for s in ranking.scores],
                "win_prob": ranking.win_prob.tolist(),
            }
            if len(images) == 2:
                answer["p_first_better"] = float(ranking.win_prob[0, 1])
            answers.append(answer)
        return answers

    def _read(self, item: dict[str, Any], where: str) -> tuple[dict, list, list]:
        has_images, has_creatives = item.get("images") is not None, item.get("creative_ids") is not None
        if has_images == has_creatives:
            raise InvalidRequest(f"{where}images", "send exactly one of images (base64 PNGs) or creative_ids")
        field = f"{where}{'images' if has_images else 'creative_ids'}"
        values = item["images"] if has_images else item["creative_ids"]
        if not isinstance(values, list) or not 2 <= len(values) <= self.config.max_candidates:
            raise InvalidRequest(field, f"must be a list of 2 to {self.config.max_candidates} candidates")
        if has_images:
            images = [payloads.decode_image(v, f"{field}[{j}]", self.config) for j, v in enumerate(values)]
            ids: list = list(range(len(values)))
            owners: list[str] = []
        else:
            found = [
                payloads.creative_image(self.world, self.creatives, v, f"{field}[{j}]")
                for j, v in enumerate(values)
            ]
            owners, images, ids = [f[0] for f in found], [f[1] for f in found], list(values)
        product = self._product(item, where, owners)
        for j, owner in enumerate(owners):
            if owner != product.get("product_id", owner):
                raise InvalidRequest(
                    f"{field}[{j}]", f"belongs to product {owner}, not {product['product_id']}"
                )
        return product, ids, [image.convert("RGB") for image in images]

    def _product(self, item: dict[str, Any], where: str, owners: list[str]) -> dict[str, Any]:
        if item.get("product_id") is not None:
            return payloads.world_product(self.world, item["product_id"], f"{where}product_id")
        if item.get("product") is not None:
            return payloads.product_attributes(item["product"], f"{where}product", self.attributes)
        if owners and len(set(owners)) == 1:  # creatives of one product name their product
            return payloads.world_product(self.world, owners[0], f"{where}product_id")
        raise InvalidRequest(f"{where}product_id", "missing; send a product_id or product attributes")
