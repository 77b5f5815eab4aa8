"""One product's candidates: K descriptions from the PM, each rendered and screened, ranked by the RM."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from caig.errors import UserError
from caig.generate.config import GenerateConfig
from caig.mllm.generate import generate
from caig.mllm.instruct import pm_prompt
from caig.render.label import RENDER_KEY
from caig.reward.rank import rank

log = logging.getLogger("caig.generate")


@dataclass
class Candidate:
    """A description and what became of it: ``rendered`` (ranked), ``unrenderable``, ``unsafe`` or
    ``repeated`` (the same text as an earlier candidate of the product)."""

    product_id: str
    description: str
    seed: int
    status: str = "rendered"
    reason: str = ""
    image: Image.Image | None = None
    rm_score: float = math.nan  # Bradley-Terry log-strength among the product's rendered candidates
    win_rate: float = math.nan  # mean swap-consistent P(beats another candidate)

    def render_facts(self) -> dict[str, Any]:
        """What the renderer recorded (backend, model, seed, safety), from the image's label."""
        return json.loads(self.image.info.get(RENDER_KEY, "{}")) if self.image is not None else {}


def write_descriptions(
    model: Any,
    processor: Any,
    products: Sequence[tuple[Mapping[str, Any], Image.Image]],
    config: GenerateConfig,
    attributes: Sequence[str],
) -> list[list[str]]:
    """K sampled descriptions per product, from the PM prompt the PM server asks (``config.template``)."""
    k = config.candidates
    questions = [pm_prompt(row, attributes, index=config.template) for row, _ in products for _ in range(k)]
    images = [image for _, image in products for _ in range(k)]
    texts = generate(
        model,
        processor,
        images,
        questions,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        seed=config.seed,
    )
    return [texts[i * k : (i + 1) * k] for i in range(len(products))]


def render_candidates(
    renderer: Any, product_id: str, image: Image.Image, texts: Sequence[str], seed: int
) -> list[Candidate]:
    """Each description rendered with its own seed; a rejected or unsafe render is kept as such, not dropped."""
    out, seen = [], set()
    for i, text in enumerate(texts):
        candidate = Candidate(product_id, text, seed + i)
        out.append(candidate)
        if text.strip() in seen:
            candidate.status, candidate.reason = "repeated", "the same text as an earlier candidate"
            continue
        seen.add(text.strip())
        try:
            candidate.image = renderer.render(image, text, candidate.seed)
        except UserError as err:
            candidate.status, candidate.reason = "unrenderable", str(err)
            continue
        if candidate.render_facts().get("safety") == "flagged":
            candidate.status, candidate.reason = "unsafe", "the safety checker flagged the background"
    return out


def rank_candidates(scorer: Any, product: Mapping[str, Any], candidates: list[Candidate]) -> list[Candidate]:
    """The rendered candidates, best first by the RM (both orders of every pair, Bradley-Terry)."""
    rendered = [c for c in candidates if c.status == "rendered"]
    if not rendered:
        return []
    ranking = rank(scorer, product, [c.image for c in rendered])
    k = len(rendered)
    for i, candidate in enumerate(rendered):
        candidate.rm_score = float(ranking.scores[i])
        candidate.win_rate = float((ranking.win_prob[i].sum() - 0.5) / (k - 1)) if k > 1 else 0.5
    return [rendered[i] for i in ranking.order]
