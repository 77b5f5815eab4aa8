"""Swap-consistent scoring with a trained RM: every pair is scored in both left/right orders.

The official evaluation shows each pair once, in one order; a model with a side bias then looks better or
worse by chance. Here ``P(A beats B) = (p_left(A | B) + p_right(B | A)) / 2``, and the share of pairs whose
two orders disagree is reported. The classification head is the inference signal (paper section 3.3:
"we utilize the comparison results from the classification head").

``RewardScorer`` is also the API the PCPO loop and the selector's priors use: ``compare(product, a, b)`` and
``pair_matrix(product, images)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from caig.reward.config import RewardConfig
from caig.reward.data import (
    Collator,
    EncodingCollator,
    PairSource,
    Recipe,
    encode_one,
    pair_recipes,
)
from caig.reward.inputs import join_side_by_side, rm_prompt, template_index
from caig.reward.io import load_reward_model
from caig.reward.model import RewardModel


class RewardScorer:
    """A trained RM in eval mode, with batching and both-order scoring."""

    def __init__(self, model: RewardModel, processor: Any, config: RewardConfig):
        self.model = model.eval()
        self.processor = processor
        self.config = config
        self.collate = Collator(processor.tokenizer.pad_token_id, padding_side="left")
        self.encode_and_collate = EncodingCollator(processor, config, padding_side="left")

    @classmethod
    def from_dir(cls, rm_dir: str | Path, device: str | None = None) -> RewardScorer:
        """The RM saved in ``rm_dir`` (``caig.reward.io``), on ``device`` (default: the GPU where there is one)."""
        return cls(*load_reward_model(rm_dir, device))

    @property
    def device(self) -> torch.device:
        return self.model.cls_head.weight.device

    def heads(self, examples: Sequence[dict[str, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
        """Both heads in one forward pass per batch of ``eval_batch_size``: P(left image is better), (N,), and
        the CTR head's ``[ctr_left, ctr_right]``, (N, 2)."""
        return self._heads(examples, self.collate)

    def recipe_heads(self, recipes: Sequence[Recipe]) -> tuple[np.ndarray, np.ndarray]:
        """``heads`` of ``Recipe``s, each batch encoded as it is scored: large images and large test sets never
        sit encoded in memory at once."""
        return self._heads(recipes, self.encode_and_collate)

    def _heads(
        self, items: Sequence[Any], collate: Callable[[list[Any]], dict]
    ) -> tuple[np.ndarray, np.ndarray]:
        both = self._batched(
            items,
            lambda out: torch.cat([torch.softmax(out["logits"], dim=-1)[:, :1], out["ctr"]], dim=1),
            collate,
        ).reshape(len(items), 3)
        return both[:, 0], both[:, 1:]

    def prob_left(self, examples: Sequence[dict[str, torch.Tensor]]) -> np.ndarray:
        """P(left image is better) for encoded examples."""
        return self.heads(examples)[0]

    def ctr(self, examples: Sequence[dict[str, torch.Tensor]]) -> np.ndarray:
        """The CTR head's ``[ctr_left, ctr_right]`` for encoded examples: (N, 2)."""
        return self.heads(examples)[1]

    @torch.no_grad()
    def _batched(
        self,
        examples: Sequence[Any],
        read: Callable[[dict[str, torch.Tensor]], torch.Tensor],
        collate: Callable[[list[Any]], dict[str, torch.Tensor]],
    ) -> np.ndarray:
        """``read`` of the model's outputs for every example, in batches of ``eval_batch_size``."""
        values = []
        size = self.config.eval_batch_size
        for start in range(0, len(examples), size):
            batch = collate(list(examples[start : start + size]))
            batch = {k: v.to(self.device) for k, v in batch.items() if k not in ("labels", "ctr")}
            batch["pixel_values"] = batch["pixel_values"].to(self.model.cls_head.weight.dtype)
            values.append(read(self.model(**batch)).float().cpu().numpy())
        return np.concatenate(values) if values else np.zeros(0)

    def score_source(self, source: PairSource) -> tuple[np.ndarray, np.ndarray]:
        """(P(left better) in the stored order, P(left better) with the images swapped) for every pair."""
        p_left, p_swapped, _ = self.score_source_with_margin(source)
        return p_left, p_swapped

    def score_source_with_margin(self, source: PairSource) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``score_source``'s two probabilities and, from the same passes, the CTR head's ``ctr_left -
        ctr_right`` averaged over both orders (> 0: left is better): the regression branch as a ranker."""
        p_left, stored = self.recipe_heads(pair_recipes(source, self.processor, self.config))
        p_swapped, swapped = self.recipe_heads(pair_recipes(source, self.processor, self.config, swap=True))
        return p_left, p_swapped, ((stored[:, 0] - stored[:, 1]) + (swapped[:, 1] - swapped[:, 0])) / 2

    def _encode(
        self, product: Mapping[str, Any], left: Image.Image, right: Image.Image
    ) -> dict[str, torch.Tensor]:
        text = rm_prompt(self.processor, product, self.config, template_index(self.config, None))
        image = join_side_by_side(left, right, self.config.image_side)
        return encode_one(self.processor, text, image, self.config.max_length)

    def pair_matrix(self, product: Mapping[str, Any], images: Sequence[Image.Image]) -> np.ndarray:
        """K x K matrix of swap-consistent P(image i beats image j); diagonal 0.5."""
        k = len(images)
        pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
        p = self.prob_left([self._encode(product, images[i], images[j]) for i, j in pairs])
        raw = np.full((k, k), 0.5)
        for (i, j), value in zip(pairs, p):
            raw[i, j] = value  # i shown on the left against j
        return (raw + (1.0 - raw.T)) / 2 * (1 - np.eye(k)) + 0.5 * np.eye(k)

    def compare(self, product: Mapping[str, Any], image_a: Image.Image, image_b: Image.Image) -> float:
        """Swap-consistent P(image_a gets more clicks than image_b)."""
        return float(self.pair_matrix(product, [image_a, image_b])[0, 1])
