"""The world's hidden truth: the CTR function of (product, background, segment) and the match judge.

For evaluation and tests only. No training or serving stage may call this: models learn from the logs,
images and text, as they would on real data. The hidden parameters are drawn from the world seed and
never written to disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from caig.world.config import WorldConfig
from caig.world.descriptions import ParsedDescription, parse_description
from caig.world.vocabulary import TERMS, Category, Colour, Term, scale_fit, scene_fit

MATCH_KINDS = ("match", "scale", "scene", "colour")
_NO_SCENE_PENALTY = 0.35  # logit; a background that names no scene reads as clutter


@dataclass(frozen=True)
class Product:
    """What the oracle needs to know of a product."""

    product_id: str
    category: Category
    colour: Colour
    appeal: float  # intrinsic appeal, logit


class HiddenParams:
    """The market's hidden tastes and the products' hidden appeal.

    Per-term and per-segment effects are the market's: drawn from ``config.market_seed``, so worlds of
    different seeds (new products, new logs) share them, as a held-out test set from the same platform would.
    Product appeal belongs to the world's own products: drawn from the world seed.
    """

    def __init__(self, config: WorldConfig, seed: int):
        rng = np.random.default_rng([config.market_seed, 7919])
        self.config = config
        self.segments = list(config.segments)
        self.term_effect = {t.text: float(rng.normal(0, config.term_effect_sd)) for t in TERMS}
        self.eye_catching = {
            t.text: float(config.eye_catching_effect * rng.uniform(0.8, 1.2)) for t in TERMS
            if t.group == "eye_catching"
        }
        taste_terms = [t.text for t in TERMS if t.group in ("lighting", "style", "palette")]
        self.segment_taste = {
            s: {t: float(rng.normal(0, config.segment_taste_sd)) for t in taste_terms} for s in self.segments
        }
        self.segment_base = {s: float(rng.normal(0, 0.15)) for s in self.segments}
        appeal_rng = np.random.default_rng([seed, 104729])
        self.product_appeal = appeal_rng.normal(0, config.product_appeal_sd, config.n_products)


def colour_harmony(product: Colour, palette: Term) -> float:
    """Harmony of a product colour and a palette in [-1, 1]: analogous or complementary good, clashing bad."""
    if product.hue is None or palette.hue is None:
        if product.name == "black" and palette.text == "charcoal grey":
            return -1.0  # the product disappears into the background
        if product.name == "white" and palette.text == "warm beige":
            return -0.6
        return 0.3
    d = abs(product.hue - palette.hue) % 360
    d = min(d, 360 - d)
    if d < 35:
        return 0.6
    if d >= 150:
        return 1.0
    if d < 70:
        return 0.0
    return -1.0


def ctr_logit(params: HiddenParams, product: Product, parsed: ParsedDescription, segment: str) -> float:
    """Logit of the click probability of one impression of this ad, for one segment."""
    cfg = params.config
    logit = math.log(cfg.base_ctr / (1 - cfg.base_ctr)) + product.appeal + params.segment_base[segment]
    for term in parsed.all_terms:
        logit += params.term_effect[term.text]
    eye = sorted((params.eye_catching[t.text] for t in parsed.group("eye_catching")), reverse=True)
    logit += sum(effect / (i + 1) for i, effect in enumerate(eye))  # diminishing returns
    scenes = parsed.group("scene")
    if scenes:
        logit += cfg.compatibility_effect * min(scene_fit(product.category, s.text) for s in scenes)
    else:
        logit -= _NO_SCENE_PENALTY
    sizes = [t.size for t in (*parsed.group("framing"), *parsed.group("prop"))]
    if sizes:
        logit += cfg.scale_effect * min(scale_fit(product.category, s) for s in sizes)
    palettes = parsed.group("palette")
    if palettes:
        logit += cfg.harmony_effect * min(colour_harmony(product.colour, p) for p in palettes)
    taste = params.segment_taste[segment]
    logit += sum(taste.get(t.text, 0.0) for t in parsed.all_terms)
    return logit


def judge_match(product: Product, parsed: ParsedDescription) -> str:
    """The paper's match judgement (A.2): "match", or the kind of mismatch: "scene", "scale", "colour"."""
    scenes = parsed.group("scene")
    if not scenes or any(scene_fit(product.category, s.text) < 0 for s in scenes):
        return "scene"
    if product.category.calm and parsed.group("eye_catching"):
        return "scene"
    sizes = [t.size for t in (*parsed.group("framing"), *parsed.group("prop"))]
    if any(scale_fit(product.category, s) < 0 for s in sizes):
        return "scale"
    if any(colour_harmony(product.colour, p) <= -0.5 for p in parsed.group("palette")):
        return "colour"
    return "match"


def true_ctr(params: HiddenParams, product: Product, description: str, segment: str | None = None) -> float:
    """Click probability of an ad with this background; averaged over the segment mix when segment is None."""
    parsed = parse_description(description)
    if segment is not None:
        if segment not in params.segment_base:
            raise ValueError(f"unknown segment '{segment}'; the world's segments are {params.segments}")
        return _sigmoid(ctr_logit(params, product, parsed, segment))
    mix = params.config.segment_mix
    return float(sum(w * _sigmoid(ctr_logit(params, product, parsed, s)) for s, w in zip(params.segments, mix)))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))

