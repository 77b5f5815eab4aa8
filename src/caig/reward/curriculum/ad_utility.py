"""Ad utility: the whole RM learns what ONE ad is worth for its product before it compares two.

The pairwise stages ask the tiny RM to compose three things through one bit per pair: what the background
shows, what that is worth for this product's category and colour, and which side it is on. Its language model
learns the middle part slowly (docs/results/rm-curriculum.md: a reader good for skill 0.44 ends at 0.08).
Here each training ad is shown alone, with its product's RM prompt, and the CTR head (both outputs) regresses
the description teacher's utility of that ad (``DescriptionTeacher.utility``, standardised): a dense target
per ad for exactly that composition. The teacher learns from the logged pairs and the creatives' own
descriptions, never from the oracle. A share of the products is held out to measure how well the utilities
generalise (their correlation, in ``train.json``). Off by default (the paper's RM has no such stage).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from caig.reward.config import RewardConfig
from caig.reward.curriculum.ads import split_products
from caig.reward.curriculum.teacher import DescriptionTeacher
from caig.reward.data import Recipe, encode_recipes
from caig.reward.inputs import rm_prompt, template_index
from caig.reward.model import RewardModel
from caig.reward.scoring import RewardScorer
from caig.reward.trainer import StageResult, fit_examples, up_front_or_per_batch

log = logging.getLogger("caig.reward")


@dataclass
class AdSource:
    """Single ads with their teacher utility: what the ad-utility stage trains on."""

    ads: pd.DataFrame  # index creative_id; product_id, image_path (absolute), utility, held_out, borrowed
    products: pd.DataFrame  # catalog indexed by product_id


@dataclass
class AdUtilityStage:
    """The ad-utility stage: the training products' single ads, the CTR head regressing their utility; the
    held-out products' fit measured after it (``held_out_fit``, in its summary)."""

    name: str
    source: AdSource
    config: (
        RewardConfig  # the RM's, with the stage's epochs, rate and batch size and the CTR head's loss only
    )
    unshardable: tuple[str, str] | None = None

    def fit(self, model: RewardModel, processor: Any, out: Path) -> StageResult:
        config = self.config
        ads = self.source.ads[~self.source.ads["held_out"]]
        recipes = ad_recipes(ads, self.source.products, processor, config, config.seed)
        examples, collator = up_front_or_per_batch(recipes, processor, config)
        summary, trainer = fit_examples(model, processor, self.name, examples, collator, config, out)
        measured = {k: round(v, 4) for k, v in held_out_fit(model, self.source, processor, config).items()}
        log.info(
            "RM stage %s: held-out utility correlation %.3f (own creatives %.3f, within product %.3f)",
            self.name, *(measured[key] for key in HELD_OUT_FIT),
        )  # fmt: skip
        counted = {key: summary.pop(key) for key in ("stage", "pairs")}  # the measurements follow them
        return {**counted, **measured, **summary}, trainer


def ad_utility_source(
    teacher: DescriptionTeacher,
    creatives: pd.DataFrame,
    products: pd.DataFrame,
    held_out_share: float,
    seed: int,
) -> AdSource:
    """Every ad of ``creatives`` (descriptions, categories, colours, absolute image paths) with its teacher
    utility, standardised over these ads, whether its product is held out, and whether it is a borrowed
    background (``creatives['borrowed']``; none when the column is absent)."""
    ads = pd.DataFrame(
        {
            "product_id": creatives["product_id"].to_numpy(),
            "image_path": creatives["image_path"].to_numpy(),
            "utility": teacher.standardised_utility(creatives).to_numpy(),
            "held_out": split_products(creatives["product_id"], held_out_share, seed),
            "borrowed": creatives.get("borrowed", pd.Series(False, index=creatives.index)).to_numpy(bool),
        },
        index=creatives.index,
    )
    return AdSource(ads, products)


def ad_recipes(
    ads: pd.DataFrame, products: pd.DataFrame, processor: Any, config: RewardConfig, seed: int | None
) -> list[Recipe]:
    """Each ad alone as a ``Recipe`` (its product's RM prompt, the ad at ``image_side``) with targets
    ``ctr = [utility, utility]`` (the CTR head's two outputs) and an uninformative ``labels`` 0.5 (the stage
    trains with ``ce_weight`` 0). ``seed`` draws a template per ad when ``config.template`` is -1."""
    rng = random.Random(seed) if seed is not None else None
    return [
        Recipe(
            rm_prompt(processor, products.loc[row.product_id], config, template_index(config, rng)),
            (row.image_path,),
            {
                "labels": torch.tensor(0.5),
                "ctr": torch.tensor([row.utility, row.utility], dtype=torch.float32),
            },
        )
        for row in ads.itertuples()
    ]


def encode_ads(
    ads: pd.DataFrame, products: pd.DataFrame, processor: Any, config: RewardConfig, seed: int | None
) -> list[dict[str, torch.Tensor]]:
    """``ad_recipes`` encoded as model inputs with their targets."""
    return encode_recipes(ad_recipes(ads, products, processor, config, seed), processor, config)


HELD_OUT_FIT = ("held_out_utility_corr", "held_out_own_utility_corr", "held_out_within_product_corr")


def held_out_fit(
    model: RewardModel, source: AdSource, processor: Any, config: RewardConfig
) -> dict[str, float]:
    """How well the RM's utilities follow the teacher's on the held-out products (NaN where too few ads):

    - ``held_out_utility_corr``: Pearson correlation over all their ads, borrowed backgrounds included;
    - ``held_out_own_utility_corr``: over their own creatives only, the same ads whatever
      ``teacher.borrowed_per_product`` is, so settings with more or fewer borrowed ads compare;
    - ``held_out_within_product_corr``: over their own creatives, each product's mean taken out of both
      utilities: the part the pairs of one product compare (the mean of a product cancels in a pair).
    """
    held = source.ads[source.ads["held_out"]]
    if len(held) < 2:
        return {key: float("nan") for key in HELD_OUT_FIT}
    was_training = model.training  # RewardScorer puts the model in eval mode; later stages train it
    recipes = ad_recipes(held, source.products, processor, config, seed=None)
    heads = RewardScorer(model, processor, config).recipe_heads(recipes)
    model.train(was_training)
    fit = held.assign(predicted=heads[1].mean(axis=1))  # each ad's utility: the CTR head's two outputs
    own = fit[~fit["borrowed"]]
    columns = ["predicted", "utility"]
    centred = own[columns] - own.groupby("product_id")[columns].transform("mean")
    return {
        "held_out_utility_corr": _corr(fit["predicted"], fit["utility"]),
        "held_out_own_utility_corr": _corr(own["predicted"], own["utility"]),
        "held_out_within_product_corr": _corr(centred["predicted"], centred["utility"]),
    }


def _corr(a: pd.Series, b: pd.Series) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if len(a) >= 2 and a.std() > 0 and b.std() > 0 else float("nan")
