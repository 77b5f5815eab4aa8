"""The RM's curriculum: the optional stages that train the same model before the logged pairs.

``reward.side_warmup`` (which ad is brighter: it learns to compare left with right) and ``reward.teacher``
(soft labels of the description teacher on every creative pair, and on borrowed backgrounds) come first;
the logged pairs of Eq. 7 always come last. README "A curriculum for small RMs" has the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from PIL import Image

from caig.errors import UserError
from caig.reward.config import RewardConfig
from caig.reward.pairs_dataset import PairSource, attach_sources
from caig.reward.side_warmup import brightness_pairs
from caig.reward.teacher import borrowed_creatives, creatives_with_products, fit_teacher, teacher_pairs


@dataclass
class Stage:
    """One pass of RM training: its name, its pairs and the config it trains with."""

    name: str  # side-warmup, teacher or pairs
    source: PairSource
    config: RewardConfig


def teacher_source(source: PairSource, config: RewardConfig, data_dir: Path, out: Path) -> PairSource:
    """The teacher's pairs: fitted on the logged pairs, labelling every pair of each product's creatives
    (and of its borrowed backgrounds, rendered to ``out/borrowed``)."""
    creatives = creatives_with_products(data_dir)
    teacher = fit_teacher(source.pairs, creatives, config.teacher)
    if config.teacher.borrowed_per_product:
        from caig.render.config import RenderConfig
        from caig.render.factory import make_renderer

        with Image.open(data_dir / creatives["image_path"].iloc[0]) as first:
            renderer = make_renderer(RenderConfig(image_size=first.size[0]))
        borrowed = borrowed_creatives(
            creatives, data_dir, config.teacher.borrowed_per_product, renderer, out / "borrowed", config.seed
        )
        creatives = pd.concat([creatives, borrowed])
    pairs = teacher_pairs(
        teacher, creatives, seed=config.seed, pairs_per_product=config.teacher.pairs_per_product
    )
    for side in ("left", "right"):  # relative paths are resolved against data_dir by attach_sources
        pairs[f"{side}_image_path"] = creatives["image_path"].loc[pairs[f"{side}_creative_id"]].to_numpy()
    if config.teacher.utility_weight > 0:  # each side's utility, standardised, as the CTR head's target
        utility = pd.Series(teacher.utility(creatives["description"], creatives), index=creatives.index)
        utility = (utility - utility.mean()) / (utility.std() or 1.0)
        for side in ("left", "right"):
            pairs[f"{side}_ctr"] = utility.loc[pairs[f"{side}_creative_id"]].to_numpy()
    return attach_sources(pairs, data_dir)


def training_stages(
    source: PairSource, config: RewardConfig, data_dir: str | Path | None, out: Path
) -> list[Stage]:
    """The curriculum: the optional side warm-up and description-teacher stages, then the logged pairs."""
    stages = []
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
        if data_dir is None:
            raise UserError("reward.teacher needs the data directory of the training pairs (--world DIR)")
        stages.append(
            Stage(
                "teacher",
                teacher_source(source, config, Path(data_dir), out),
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
