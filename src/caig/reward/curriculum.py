"""The RM's curriculum: the optional stages that train the same model before the logged pairs.

``reward.ad_utility`` (single ads regressed on the description teacher's utility: what an ad is worth for its
product), ``reward.side_warmup`` (which ad is brighter: it learns to compare left with right) and
``reward.teacher`` (soft labels of the description teacher on every creative pair, and on borrowed
backgrounds) come first, in that order; the logged pairs of Eq. 7 always come last. docs/results/rm-curriculum.md "A curriculum for
small RMs" and "Ad utility" have the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from caig.errors import UserError
from caig.reward.ad_utility import AdSource, ad_utility_source
from caig.reward.config import RewardConfig
from caig.reward.pairs_dataset import PairSource, attach_sources
from caig.reward.shared_stages import cached_renders
from caig.reward.side_warmup import brightness_pairs
from caig.reward.teacher import (
    DescriptionTeacher,
    creatives_with_products,
    fit_teacher,
    render_borrowed,
    teacher_pairs,
)


@dataclass
class Stage:
    """One pass of RM training: its name, its pairs and the config it trains with."""

    name: str  # ad-utility, side-warmup, teacher or pairs
    source: PairSource | AdSource  # pairs, or single ads (ad-utility)
    config: RewardConfig


def teacher_and_ads(
    source: PairSource,
    config: RewardConfig,
    data_dir: Path,
    out: Path,
    shared: str | Path | None = None,
) -> tuple[DescriptionTeacher, pd.DataFrame]:
    """The description teacher, fitted on the logged pairs, and the ads it labels: each product's creatives
    and, with ``teacher.borrowed_per_product``, its borrowed backgrounds (rendered to ``out/borrowed``, or
    to and from ``shared``: ``caig.reward.shared_stages``); column ``borrowed`` tells the two apart."""
    creatives = creatives_with_products(data_dir).assign(borrowed=False)
    teacher = fit_teacher(source.pairs, creatives, config.teacher)
    if config.teacher.borrowed_per_product:
        per_product = config.teacher.borrowed_per_product
        borrowed = cached_renders(
            shared, out / "borrowed", data_dir, per_product, config.seed,
            lambda folder: render_borrowed(creatives, data_dir, per_product, folder, config.seed),
        )  # fmt: skip
        creatives = pd.concat([creatives, borrowed.assign(borrowed=True)])
    paths = creatives["image_path"]  # the world's own creatives are relative to data_dir
    creatives = creatives.assign(
        image_path=[str(p if Path(p).is_absolute() else (data_dir / p).resolve()) for p in paths]
    )
    return teacher, creatives


def teacher_source(
    source: PairSource,
    config: RewardConfig,
    data_dir: Path,
    teacher: DescriptionTeacher,
    creatives: pd.DataFrame,
) -> PairSource:
    """The teacher's pairs: soft labels on pairs of each product's ads (``teacher_and_ads``)."""
    pairs = teacher_pairs(
        teacher, creatives, seed=config.seed, pairs_per_product=config.teacher.pairs_per_product
    )
    for side in ("left", "right"):
        pairs[f"{side}_image_path"] = creatives["image_path"].loc[pairs[f"{side}_creative_id"]].to_numpy()
    if config.teacher.utility_weight > 0:  # each side's utility, standardised, as the CTR head's target
        utility = teacher.standardised_utility(creatives)
        for side in ("left", "right"):
            pairs[f"{side}_ctr"] = utility.loc[pairs[f"{side}_creative_id"]].to_numpy()
    return attach_sources(pairs, data_dir)


def training_stages(
    source: PairSource,
    config: RewardConfig,
    data_dir: str | Path | None,
    out: Path,
    shared: str | Path | None = None,
) -> list[Stage]:
    """The curriculum: the optional ad-utility, side warm-up and description-teacher stages, then the logged
    pairs. Single ads come before pairs: the RM learns what an ad is worth, then to compare two. ``shared``:
    where the teacher's borrowed renders are kept for other RMs of the same data and seed."""
    stages = []
    if config.ad_utility.enabled or config.teacher.enabled:
        if data_dir is None:
            raise UserError(
                "reward.ad_utility and reward.teacher need the data directory of the training pairs (--world DIR)"
            )
        teacher, ads = teacher_and_ads(source, config, Path(data_dir), out, shared)
    if config.ad_utility.enabled:
        adu = config.ad_utility
        stages.append(
            Stage(
                "ad-utility",
                ad_utility_source(teacher, ads, source.products, adu.held_out_share, config.seed),
                replace(
                    config,
                    epochs=adu.epochs,
                    learning_rate=adu.learning_rate,
                    batch_size=adu.batch_size,
                    ce_weight=0.0,  # the targets are the CTR head's; the classification head has none
                    point_weight=1.0,
                    ctr_scale=1.0,  # standardised already
                    train_both_orders=False,
                    swap_consistent_training=False,
                ),
            )
        )
    warm = config.side_warmup
    if warm.enabled:
        warm_config = replace(
            config, learning_rate=warm.learning_rate, epochs=warm.epochs, point_weight=0.0, head_lr_scale=1.0
        )
        stages.append(
            Stage(
                "side-warmup",
                brightness_pairs(source, config.image_side, warm.max_pairs, config.seed),
                warm_config,
            )
        )
    if config.teacher.enabled:
        stages.append(
            Stage(
                "teacher",
                teacher_source(source, config, Path(data_dir), teacher, ads),
                replace(
                    config,
                    epochs=config.teacher.epochs,
                    point_weight=config.teacher.utility_weight,  # 0: CE only (the teacher has no CTRs)
                    ctr_scale=1.0,  # the utilities are standardised already
                    learning_rate=config.teacher.learning_rate or config.learning_rate,
                ),
            )
        )
    stages.append(Stage("pairs", source, config))
    return stages
