"""Config of the RM's curriculum: the optional stages that train the RM before the logged pairs.

``CurriculumConfig`` is the ``curriculum`` section of a profile (off in the paper and in both profiles;
docs/results/rm-curriculum.md says when the stages help). Each stage has its own dataclass; the settings of
the RM itself (``reward``: learning rate, heads, loss, input) are ``caig.reward.config.RewardConfig``, which
every stage starts from. ``check_curriculum`` refuses combinations of the two that cannot train.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from caig.reward.config import RewardConfig


@dataclass
class SideWarmupConfig:
    """The pixel-only side warm-up (``caig.reward.curriculum.side_warmup``): which ad is brighter, before the click pairs."""

    enabled: bool = False  # paper: off (a 7B RM compares the two sides without it)
    max_pairs: int = 10000  # training pairs relabelled by brightness (a random subset beyond this)
    epochs: float = 1.0  # passes over them
    learning_rate: float = 1e-3  # the warm-up's peak rate (the backbone is untrained or pre-trained only)

    def __post_init__(self) -> None:
        if self.max_pairs < 1 or self.epochs <= 0 or self.learning_rate <= 0:
            raise ValueError("side_warmup.max_pairs, .epochs and .learning_rate must be positive")


@dataclass
class PerceptionConfig:
    """Background perception (``caig.reward.curriculum.perception``): the vision tower learns each ad's background words."""

    enabled: bool = False  # paper: off (a 7B RM's vision tower sees backgrounds without it)
    epochs: float = 40.0  # passes over the training world's ads (~70 s on one core for 12,000 tiny-tower ads)
    learning_rate: float = 2e-3  # vision tower, projector and the word probe
    batch_size: int = 64  # ads per step
    min_df: int = 2  # words in fewer descriptions are not targets
    held_out_share: float = 0.1  # share of products kept out to measure the words' F1
    borrowed_per_product: int = 0  # other products' background descriptions rendered around each product:
    #   more distinct ads to learn the words from (48 at 30 epochs: held-out F1 0.82 -> 0.93; docs/results/rm-limits.md)

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.learning_rate <= 0 or self.batch_size < 1 or self.min_df < 1:
            raise ValueError("perception.epochs, .learning_rate, .batch_size and .min_df must be positive")
        if self.borrowed_per_product < 0:
            raise ValueError("perception.borrowed_per_product must be 0 (off) or a positive count")
        if not 0 <= self.held_out_share < 1:
            raise ValueError("perception.held_out_share must be in [0, 1)")


@dataclass
class AdUtilityConfig:
    """Ad utility (``caig.reward.curriculum.ad_utility``): single ads regressed on the description teacher's utility."""

    enabled: bool = False  # paper: off (the RM learns from pairs only)
    epochs: float = 10.0  # passes over the training ads (borrowed ones too: teacher.borrowed_per_product)
    learning_rate: float = 3e-4  # peak rate of the whole RM (1e-3 generalised worse in a pilot)
    batch_size: int = 16  # ads per step
    held_out_share: float = 0.1  # share of products kept out to measure the utilities' correlation

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.learning_rate <= 0 or self.batch_size < 1:
            raise ValueError("ad_utility.epochs, .learning_rate and .batch_size must be positive")
        if not 0 <= self.held_out_share < 1:
            raise ValueError("ad_utility.held_out_share must be in [0, 1)")


@dataclass
class TeacherConfig:
    """The description teacher (``caig.reward.curriculum.teacher``): soft labels on every creative pair, for distillation."""

    enabled: bool = False  # paper: off (the RM learns from the logged pairs only)
    target: Literal["pairs", "ctr"] = "pairs"  # what the teacher fits: the logged pairs' labels (a logistic
    #   regression, one bit per pair) or each paired creative's logged CTR within its product (a ridge
    #   regression of its log-odds weighted by impressions, then scaled to the pairs' labels: docs/results/rm-curriculum.md)
    ridge_alpha: float = 100.0  # L2 strength of the ctr target's ridge regression
    max_ngram: int = (
        1  # word n-grams of the descriptions (1: single words generalise best, docs/results/rm-curriculum.md)
    )
    min_df: int = 2  # n-grams in fewer creatives are dropped
    regularization_c: float = 1.0  # inverse L2 strength of the logistic regression
    epochs: float = 1.0  # passes of the RM over the teacher's pairs (before the logged pairs)
    learning_rate: float = 0.0  # of the teacher stage (0: the RM's learning_rate)
    borrowed_per_product: int = 0  # other products' backgrounds rendered around each product (0: none)
    pairs_per_product: int = 0  # teacher pairs drawn per product (0: every pair of its creatives)
    utility_weight: float = 0.0  # > 0: the CTR head also regresses each side's teacher utility (standardised)
    #   with this weight, a dense target per side beside the pair's soft label (0: CE only)

    def __post_init__(self) -> None:
        if self.borrowed_per_product < 0 or self.pairs_per_product < 0:
            raise ValueError("teacher.borrowed_per_product and teacher.pairs_per_product must be >= 0")
        if self.max_ngram < 1 or self.min_df < 1:
            raise ValueError("teacher.max_ngram and teacher.min_df must be >= 1")
        if self.target not in ("pairs", "ctr"):
            raise ValueError(
                "teacher.target must be 'pairs' (the pairs' labels) or 'ctr' (each creative's CTR)"
            )
        if self.ridge_alpha <= 0:
            raise ValueError("teacher.ridge_alpha must be positive")
        if self.regularization_c <= 0 or self.epochs <= 0:
            raise ValueError("teacher.regularization_c and teacher.epochs must be positive")
        if self.learning_rate < 0:
            raise ValueError("teacher.learning_rate must be >= 0 (0: the RM's learning_rate)")
        if self.utility_weight < 0:
            raise ValueError("teacher.utility_weight must be >= 0 (0: no utility regression)")


@dataclass
class CurriculumConfig:
    """The RM's curriculum: stages that train the same model before the logged pairs (off in the paper).

    They run in this order: perception, ad utility, side warm-up, teacher; the logged pairs (Eq. 7) come last.
    """

    perception: PerceptionConfig = field(default_factory=PerceptionConfig)  # stage 0: background words
    ad_utility: AdUtilityConfig = field(default_factory=AdUtilityConfig)  # stage 0b: one ad's teacher utility
    side_warmup: SideWarmupConfig = field(default_factory=SideWarmupConfig)  # stage 1: which ad is brighter
    teacher: TeacherConfig = field(default_factory=TeacherConfig)  # stage 2: the description teacher's pairs

    def regresses_ctr(self) -> bool:
        """Whether a stage trains the RM's CTR head (the ad-utility stage, the teacher's utility target)."""
        return self.ad_utility.enabled or self.teacher.utility_weight > 0

    def without_ctr_regression(self) -> CurriculumConfig:
        """The same curriculum less the stages' CTR regression: for an RM without the point loss (Table 1's
        rows before the last), whose CTR branch nothing trains."""
        return replace(
            self,
            ad_utility=replace(self.ad_utility, enabled=False),
            teacher=replace(self.teacher, utility_weight=0.0),
        )


def check_curriculum(reward: RewardConfig, curriculum: CurriculumConfig) -> None:
    """Refuse a curriculum that the RM cannot train: a text head has no CTR branch to regress (ValueError)."""
    if reward.head == "text" and curriculum.regresses_ctr():
        raise ValueError(
            "head 'text' has no CTR branch for curriculum.ad_utility or curriculum.teacher.utility_weight to "
            "train: set curriculum.ad_utility.enabled=false and curriculum.teacher.utility_weight=0, "
            "or reward.head=classification"
        )
