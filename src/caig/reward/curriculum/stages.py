"""The RM's curriculum: the optional stages that train the same model before the logged pairs.

``build_stages`` lists them, in order: ``curriculum.perception`` (the vision tower learns each ad's background
words), ``curriculum.ad_utility`` (single ads regressed on the description teacher's utility: what an ad is
worth for its product), ``curriculum.side_warmup`` (which ad is brighter: it learns to compare left with
right) and ``curriculum.teacher`` (soft labels of the description teacher on every creative pair, and on
borrowed backgrounds); the logged pairs of Eq. 7 always come last. ``caig.reward.trainer.train_stages`` trains
them. docs/results/rm-curriculum.md "A curriculum for small RMs" and "Ad utility" have the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from caig.errors import UserError
from caig.reward.ablation import AblationRow
from caig.reward.config import CURRICULUM_SECTIONS, RewardConfig
from caig.reward.curriculum.ad_utility import AdUtilityStage, ad_utility_source
from caig.reward.curriculum.ads import creatives_with_products, render_borrowed
from caig.reward.curriculum.config import (
    AdUtilityConfig,
    CurriculumConfig,
    SideWarmupConfig,
    TeacherConfig,
    check_curriculum,
)
from caig.reward.curriculum.perception import PerceptionStage
from caig.reward.curriculum.shared import cached_renders
from caig.reward.curriculum.side_warmup import brightness_pairs
from caig.reward.curriculum.teacher import DescriptionTeacher, fit_teacher, teacher_pairs
from caig.reward.data import PairSource, attach_sources
from caig.reward.io import META_FILE, read_rm_json
from caig.reward.trainer import PairStage, Stage
from caig.typed_config import as_dict, build_config

# Why each stage cannot run under DeepSpeed ZeRO-3 (each process holds a slice of every parameter): a run with
# one of them on and a ZeRO-3 config is refused before the model loads (``caig.distributed.check_shardable``).
UNSHARDABLE = {
    "perception": "trains the vision tower in its own loop, outside the DeepSpeed engine",
    "ad_utility": "scores held-out ads with the model outside the engine between stages",
    "side_warmup": "is a curriculum stage of its own (a second engine over a sharded model)",
    "teacher": "is a curriculum stage of its own (a second engine over a sharded model)",
}


def unshardable(curriculum: CurriculumConfig) -> list[tuple[str, str]]:
    """(setting, why) of every enabled stage, in the stages' order: what ZeRO-3 refuses."""
    return [blocker(name) for name in UNSHARDABLE if getattr(curriculum, name).enabled]


def blocker(name: str) -> tuple[str, str]:
    """(setting, why) of the stage ``name`` (a ``CurriculumConfig`` field) for ``Stage.unshardable``."""
    return f"curriculum.{name}.enabled=true", UNSHARDABLE[name]


def build_stages(
    source: PairSource,
    config: RewardConfig,
    curriculum: CurriculumConfig,
    data_dir: str | Path | None,
    out: Path,
    shared: str | Path | None = None,
    start_model: str | Path | None = None,
) -> list[Stage]:
    """The stages that train an RM on ``source``'s logged pairs: the curriculum's enabled ones, then the logged
    pairs (with the curriculum off, those alone: the paper's RM). Single ads come before pairs: the RM learns
    what an ad is worth, then to compare two.

    ``data_dir``: where the pairs' creatives live (perception, ad utility and the teacher read them); ``out``:
    the RM's directory (borrowed renders go there); ``shared``: a folder where RMs of the same start model
    (``start_model``), data and seed keep and reuse the perceived vision tower and the borrowed renders
    (``caig.reward.curriculum.shared``; the ablation's rows).
    """
    check_curriculum(config, curriculum)
    out = Path(out)
    stages: list[Stage] = []
    if curriculum.perception.enabled:  # the vision tower first: every later stage reads its tokens
        stages.append(
            PerceptionStage(
                "perception",
                config,
                curriculum.perception,
                data_dir,
                start_model,
                shared,
                blocker("perception"),
            )
        )
    if curriculum.ad_utility.enabled or curriculum.teacher.enabled:
        if data_dir is None:
            raise UserError(
                "curriculum.ad_utility and curriculum.teacher need the data directory of the training pairs "
                "(--world DIR)"
            )
        teacher, ads = teacher_and_ads(source, config, curriculum, Path(data_dir), out, shared)
    if curriculum.ad_utility.enabled:
        stages.append(ad_utility_stage(source, config, curriculum.ad_utility, teacher, ads))
    if curriculum.side_warmup.enabled:
        stages.append(side_warmup_stage(source, config, curriculum.side_warmup))
    if curriculum.teacher.enabled:
        pairs = teacher_source(source, config, curriculum, Path(data_dir), teacher, ads)
        stages.append(teacher_stage(pairs, config, curriculum.teacher))
    stages.append(PairStage("pairs", source, config))
    return stages


def ad_utility_stage(
    source: PairSource,
    config: RewardConfig,
    adu: AdUtilityConfig,
    teacher: DescriptionTeacher,
    ads: pd.DataFrame,
) -> AdUtilityStage:
    """Single ads (``teacher_and_ads``) with their teacher utility as the CTR head's only target, at the
    stage's own epochs, rate and batch size."""
    return AdUtilityStage(
        "ad-utility",
        ad_utility_source(teacher, ads, source.products, adu.held_out_share, config.seed),
        replace(
            config,
            epochs=adu.epochs,
            learning_rate=adu.learning_rate,
            batch_size=adu.batch_size,
            ce_weight=0.0,  # the targets are the CTR head's; the classification head has none
            point_weight=1.0,
            recipe=replace(  # one ad per example, its utility standardised already
                config.recipe, ctr_scale=1.0, train_both_orders=False, swap_consistent_training=False
            ),
        ),
        blocker("ad_utility"),
    )


def side_warmup_stage(source: PairSource, config: RewardConfig, warm: SideWarmupConfig) -> PairStage:
    """The training pairs relabelled by which ad is brighter, CE only, at the warm-up's own rate."""
    return PairStage(
        "side-warmup",
        brightness_pairs(source, config.image_side, warm.max_pairs, config.seed),
        replace(
            config,
            learning_rate=warm.learning_rate,
            epochs=warm.epochs,
            point_weight=0.0,
            recipe=replace(config.recipe, head_lr_scale=1.0),
        ),
        unshardable=blocker("side_warmup"),
    )


def teacher_stage(pairs: PairSource, config: RewardConfig, teacher: TeacherConfig) -> PairStage:
    """The teacher's soft-labelled pairs (``teacher_source``), CE plus, with ``utility_weight``, the CTR head
    regressing each side's utility."""
    return PairStage(
        "teacher",
        pairs,
        replace(
            config,
            epochs=teacher.epochs,
            point_weight=teacher.utility_weight,  # 0: CE only (the teacher has no CTRs)
            recipe=replace(config.recipe, ctr_scale=1.0),  # the utilities are standardised already
            learning_rate=teacher.learning_rate or config.learning_rate,
        ),
        unshardable=blocker("teacher"),
    )


def teacher_and_ads(
    source: PairSource,
    config: RewardConfig,
    curriculum: CurriculumConfig,
    data_dir: Path,
    out: Path,
    shared: str | Path | None = None,
) -> tuple[DescriptionTeacher, pd.DataFrame]:
    """The description teacher, fitted on the logged pairs, and the ads it labels: each product's creatives
    and, with ``teacher.borrowed_per_product``, its borrowed backgrounds (rendered to ``out/borrowed``, or
    to and from ``shared``: ``caig.reward.curriculum.shared``); column ``borrowed`` tells the two apart."""
    creatives = creatives_with_products(data_dir).assign(borrowed=False)
    teacher = fit_teacher(source.pairs, creatives, curriculum.teacher)
    if curriculum.teacher.borrowed_per_product:
        per_product = curriculum.teacher.borrowed_per_product
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
    curriculum: CurriculumConfig,
    data_dir: Path,
    teacher: DescriptionTeacher,
    creatives: pd.DataFrame,
) -> PairSource:
    """The teacher's pairs: soft labels on pairs of each product's ads (``teacher_and_ads``)."""
    pairs = teacher_pairs(
        teacher, creatives, seed=config.seed, pairs_per_product=curriculum.teacher.pairs_per_product
    )
    for side in ("left", "right"):
        pairs[f"{side}_image_path"] = creatives["image_path"].loc[pairs[f"{side}_creative_id"]].to_numpy()
    if curriculum.teacher.utility_weight > 0:  # each side's utility, standardised, as the CTR head's target
        utility = teacher.standardised_utility(creatives)
        for side in ("left", "right"):
            pairs[f"{side}_ctr"] = utility.loc[pairs[f"{side}_creative_id"]].to_numpy()
    return attach_sources(pairs, data_dir)


def curriculum_for_row(curriculum: CurriculumConfig, row: AblationRow) -> CurriculumConfig:
    """The curriculum of one Table 1 row: a row without the point loss trains no CTR regression at all, so the
    stages that regress the CTR head go off with Eq. 7's MSE (``without_ctr_regression``)."""
    return curriculum if row.point_loss else curriculum.without_ctr_regression()


@dataclass(frozen=True)
class CurriculumPlan:
    """The ablation's stages with the profile's curriculum (a ``caig.reward.ablation.StagePlan``): every row
    keeps it (less the CTR regression where the row has no point loss), so a row differs from the one above
    by its Table 1 switch only. ``data_dir``: the training pairs' data."""

    curriculum: CurriculumConfig
    data_dir: str | Path | None

    def stages(
        self,
        row: AblationRow,
        config: RewardConfig,
        source: PairSource,
        start_model: str | Path,
        out: Path,
        shared: Path,
    ) -> list[Stage]:
        row_curriculum = curriculum_for_row(self.curriculum, row)
        return build_stages(source, config, row_curriculum, self.data_dir, out, shared, start_model)

    def recorded(self, row: AblationRow) -> dict[str, Any]:
        return recorded(curriculum_for_row(self.curriculum, row))


def recorded(curriculum: CurriculumConfig) -> dict[str, Any]:
    """The curriculum's settings as an RM's ``rm.json`` records them (``caig.reward.io``)."""
    return {"curriculum": as_dict(curriculum)}


def trained_curriculum(rm_dir: str | Path) -> CurriculumConfig:
    """The curriculum the RM in ``rm_dir`` was trained with: ``rm.json``'s ``curriculum`` (``recorded``), or,
    for an RM saved before the curriculum had its own section, its stages' settings in ``reward``."""
    meta = read_rm_json(rm_dir)
    old = {k: v for k, v in meta["reward"].items() if k in CURRICULUM_SECTIONS}
    path = str(Path(rm_dir) / META_FILE)
    return build_config(CurriculumConfig, meta.get("curriculum", old), "curriculum", path)
