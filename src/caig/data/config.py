"""Config of the data stage: ingestion, validation and training-data building."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PairRuleConfig:
    """The paper's reward-model pair rule (REFERENCE.md): exposure threshold E and CTR-ratio window."""

    min_impressions: int = 1000  # E: keep creatives with impressions > E
    min_ratio_gap: float = 0.05  # D: keep pairs whose CTR ratio hi/lo is at least 1 + D
    max_ratio: float | None = 1.20  # upper bound of hi/lo; null for none
    max_pairs_per_product: int = 20  # cap so that products with many creatives do not dominate

    def __post_init__(self) -> None:
        if self.min_impressions < 0:
            raise ValueError("min_impressions must be >= 0")
        if self.min_ratio_gap < 0:
            raise ValueError("min_ratio_gap must be >= 0")
        if self.max_ratio is not None and self.max_ratio <= 1 + self.min_ratio_gap:
            raise ValueError("max_ratio must be above 1 + min_ratio_gap (or null)")


@dataclass
class DataConfig:
    """Everything the data stage reads from the profile."""

    pairs: PairRuleConfig = field(default_factory=PairRuleConfig)
