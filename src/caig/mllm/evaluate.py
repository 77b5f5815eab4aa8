"""Evaluation of the prompt model on held-out products: category accuracy and match rate (paper Figure 4).

EVALUATION ONLY: the match rate asks the world's oracle judge (``World.judge_match``) whether a generated
background suits the product; no training code imports this module's judge. Category and colour answers
are read from the product image alone (image understanding); descriptions are sampled from the PM prompt
(a Table 4 template + f_instruct) at the configured temperature, as PCPO samples them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd

from caig.mllm.generate import generate
from caig.mllm.instruct import pm_prompt
from caig.mllm.templates import CATEGORY_QUESTION, COLOUR_QUESTION, PM_TEMPLATES
from caig.world.descriptions import normalise, parse_description
from caig.world.loaded import World

SAMPLES_KEPT = 8


def evaluate_pm(
    model: Any,
    processor: Any,
    world: World,
    product_ids: Sequence[str],
    attributes: Sequence[str],
    temperature: float = 1.0,
    max_new_tokens: int = 40,
    samples_per_product: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Category and colour accuracy, and match rate of sampled PM descriptions, on ``product_ids``."""
    products = world.products.loc[list(product_ids)].reset_index()
    images = [world.product_image(pid) for pid in products["product_id"]]
    rows = products.to_dict("records")
    category = generate(
        model, processor, images, [CATEGORY_QUESTION] * len(rows), max_new_tokens=6, seed=seed
    )
    colour = generate(model, processor, images, [COLOUR_QUESTION] * len(rows), max_new_tokens=4, seed=seed)
    pm_images, pm_questions, pm_rows = [], [], []
    for k in range(samples_per_product):
        for i, row in enumerate(rows):
            pm_images.append(images[i])
            pm_questions.append(pm_prompt(row, attributes, index=(i + k) % len(PM_TEMPLATES)))
            pm_rows.append(row)
    descriptions = generate(
        model,
        processor,
        pm_images,
        pm_questions,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
    )
    verdicts = [world.judge_match(r["product_id"], d) for r, d in zip(pm_rows, descriptions)]
    return {
        "n_products": len(rows),
        "category_accuracy": _accuracy(category, products["category"]),
        "colour_accuracy": _accuracy(colour, products["colour"]),
        **description_stats(descriptions, verdicts),
        "samples": [
            {"product_id": r["product_id"], "title": r["title"], "description": d, "judge": v}
            for r, d, v in list(zip(pm_rows, descriptions, verdicts))[:SAMPLES_KEPT]
        ],
    }


def description_stats(descriptions: Sequence[str], verdicts: Sequence[str]) -> dict[str, Any]:
    """Match rate, mismatch kinds, and how much of the text is the world's background vocabulary."""
    parsed = [parse_description(d) for d in descriptions]
    n = max(len(descriptions), 1)
    words = [len(normalise(d).split()) for d in descriptions]
    term_words = [sum(len(t.text.split()) for t in p.all_terms) for p in parsed]
    return {
        "n_descriptions": len(descriptions),
        "match_rate": sum(v == "match" for v in verdicts) / n,
        "mismatch_kinds": dict(sorted(Counter(v for v in verdicts if v != "match").items())),
        "with_vocabulary_terms": sum(bool(p.all_terms) for p in parsed) / n,
        "mean_terms": sum(len(p.all_terms) for p in parsed) / n,
        "vocabulary_word_share": sum(term_words) / max(sum(words), 1),
    }


def _accuracy(answers: Sequence[str], truth: pd.Series) -> float:
    hits = [normalise(a) == normalise(t) for a, t in zip(answers, truth)]
    return sum(hits) / max(len(hits), 1)
