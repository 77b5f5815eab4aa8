"""Algorithm 1, lines 3-10: for each product, sample two descriptions, render both ads, and let the frozen
reward model say which will get more clicks (scored in both orders, averaged)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from PIL import Image

from caig.distributed import from_main_process, shard_map
from caig.errors import UserError
from caig.mllm.chat import render
from caig.mllm.generate import generate
from caig.mllm.instruct import pm_prompt
from caig.mllm.templates import PM_TEMPLATES
from caig.mllm.token_budget import image_tokens, text_tokens
from caig.pcpo.config import PCPOConfig
from caig.pcpo.mismatch import ProductInput, make_mismatch
from caig.pcpo.trainer import PreferencePair

log = logging.getLogger("caig.pcpo")


@dataclass(frozen=True)
class RenderedAd:
    """One sample as the judge sees it: the description and the ad rendered from it."""

    description: str
    image: Image.Image


class PairJudge(Protocol):
    """What PCPO needs of its judge: swap-consistent P(ad a gets more clicks than ad b). The paper's judge is
    the RM, which reads the images (``RMJudge``); ``caig.reward.curriculum.teacher.DescriptionTeacher`` reads the
    descriptions."""

    def compare(self, product: dict, a: RenderedAd, b: RenderedAd) -> float: ...


@dataclass
class RMJudge:
    """The frozen RM as PCPO's judge: it compares the two rendered ads (both orders, averaged)."""

    scorer: Any  # caig.reward.scoring.RewardScorer

    def compare(self, product: dict, a: RenderedAd, b: RenderedAd) -> float:
        return self.scorer.compare(product, a.image, b.image)


class Renderer(Protocol):
    def render(self, product: Image.Image, description: str, seed: int = 0) -> Image.Image: ...


@dataclass
class RolloutStats:
    products: int = 0
    pairs: int = 0
    identical: int = 0  # both samples the same text: no preference to learn from
    ties: int = 0  # the RM could not choose (p == 0.5)
    unrenderable: int = 0  # a sample the renderer rejects (e.g. empty text): no pair, counted here
    mean_margin: float = 0.0  # mean |p - 0.5| of the RM's choices


def question(product: ProductInput, template: int, attributes: Sequence[str]) -> str:
    """The PM's instruct prompt for a product: Table 4 PM template ``template`` plus its attributes."""
    return pm_prompt(product.attributes, attributes, index=template)


def longest_sequence(
    processor: Any, products: Sequence[ProductInput], attributes: Sequence[str], max_new_tokens: int
) -> int:
    """Tokens of the longest sequence PCPO can train on: any product's prompt under every template, with
    the largest product image (a textual mismatch pairs one product's image with another's text), and an
    answer of ``max_new_tokens`` plus ``</s>``."""
    prompts = [
        render(processor, question(p, t, attributes)) for p in products for t in range(len(PM_TEMPLATES))
    ]
    image = max(image_tokens(processor, *p.image.size) for p in products)
    return max(text_tokens(processor, prompts)) - 1 + image + max_new_tokens + 1


def rollout(
    model: Any,
    processor: Any,
    products: Sequence[ProductInput],
    judge: PairJudge,
    renderer: Renderer,
    config: PCPOConfig,
    attributes: Sequence[str],
    rng: np.random.Generator,
    pool: Sequence[ProductInput],
    whole_model: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[list[PreferencePair], RolloutStats]:
    """Preference pairs of one round, with a mismatched input per pair unless the method is plain DPO.

    In a job of several processes every one samples the descriptions (inside ``whole_model()``, where ZeRO-3
    gathers the parameters; the main process's texts count) and renders and judges its share of the
    products; all get every pair, the same.
    """
    templates = [int(rng.integers(len(PM_TEMPLATES))) for _ in products]
    questions = [question(p, t, attributes) for p, t in zip(products, templates, strict=True)]
    images = [p.image for p in products]
    first, second = _two_descriptions(model, processor, images, questions, config, rng, whole_model)
    render_seeds = [int(s) for s in rng.integers(2**31, size=len(products))]
    stats = RolloutStats(products=len(products))
    verdicts = shard_map(
        lambda i: _judge(products[i], first[i], second[i], render_seeds[i], judge, renderer),
        range(len(products)),
    )
    pairs, margins = [], []
    for i, p in enumerate(verdicts):
        if p == IDENTICAL:
            stats.identical += 1
            continue
        if p == UNRENDERABLE:
            stats.unrenderable += 1
            continue
        if p == 0.5:
            stats.ties += 1
            continue
        chosen, rejected = (first[i], second[i]) if p > 0.5 else (second[i], first[i])
        margins.append(abs(p - 0.5))
        mismatched, mismatched_q, kind = None, None, None
        if config.method != "dpo":
            mismatched, kind = make_mismatch(
                products[i], list(pool), rng, config.method, config.mask_ratio, config.mask_patch
            )
            mismatched_q = question(mismatched, templates[i], attributes)
        pairs.append(
            PreferencePair(
                products[i], questions[i], chosen, rejected, mismatched, mismatched_q, max(p, 1.0 - p), kind
            )
        )
    stats.pairs = len(pairs)
    stats.mean_margin = float(np.mean(margins)) if margins else 0.0
    return pairs, stats


def _two_descriptions(
    model: Any,
    processor: Any,
    images: list[Any],
    questions: list[str],
    config: PCPOConfig,
    rng: np.random.Generator,
    whole_model: Callable[[], AbstractContextManager],
) -> tuple[list[str], list[str]]:
    """Two sampled descriptions per product, from one ``generate`` over the inputs twice (inside
    ``whole_model()``); every process gets the main process's texts."""
    with whole_model():
        texts = generate(
            model,
            processor,
            images * 2,
            questions * 2,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=int(rng.integers(2**31)),
        )
    texts = from_main_process(texts)
    return texts[: len(images)], texts[len(images) :]


IDENTICAL, UNRENDERABLE = "identical", "unrenderable"  # verdicts that make no pair


def _judge(
    product: ProductInput, a: str, b: str, seed: int, judge: PairJudge, renderer: Renderer
) -> float | str:
    """The judge's P(a's ad gets more clicks than b's), both ads rendered with ``seed``; or why no pair."""
    if a.strip() == b.strip():
        return IDENTICAL  # both samples the same text: no preference to learn from
    try:
        ad_a, ad_b = renderer.render(product.image, a, seed), renderer.render(product.image, b, seed)
    except UserError as err:
        log.debug("product %s: sample not renderable (%s)", product.product_id, err)
        return UNRENDERABLE
    return float(judge.compare(product.attributes, RenderedAd(a, ad_a), RenderedAd(b, ad_b)))


def pairs_frame(pairs: Sequence[PreferencePair]) -> pd.DataFrame:
    """A round's preference pairs as a table (``round-NN/pairs.parquet``): what the RM chose, for audit.

    ``mismatched_product_id`` is the product whose text a textual mismatch borrowed; empty otherwise.
    """
    return pd.DataFrame(
        {
            "product_id": [p.product.product_id for p in pairs],
            "chosen": [p.chosen for p in pairs],
            "rejected": [p.rejected for p in pairs],
            "chosen_probability": [p.chosen_probability for p in pairs],
            "mismatch_kind": [p.mismatch_kind for p in pairs],
            "mismatched_product_id": [_borrowed_text_of(p) for p in pairs],
        },
        columns=[
            "product_id",
            "chosen",
            "rejected",
            "chosen_probability",
            "mismatch_kind",
            "mismatched_product_id",
        ],
    )


def _borrowed_text_of(pair: PreferencePair) -> str | None:
    if pair.mismatch_kind != "textual" or pair.mismatched is None:
        return None
    return str(pair.mismatched.attributes.get("product_id", ""))
