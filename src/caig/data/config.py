"""Config of the data stage: ingestion, validation and training-data building."""

from __future__ import annotations

import re
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
class IngestConfig:
    """How ``caig data ingest`` reads event logs: batch size, memory and the quarantine threshold."""

    batch_rows: int = 262_144  # rows per record batch read from a parquet file (bounds Python-side memory)
    memory_limit: str = (
        "1GB"  # DuckDB memory limit for de-duplication and aggregation; spills to disk beyond it
    )
    threads: int = 2  # DuckDB worker threads
    max_quarantine_share: float = 0.05  # exit non-zero when quarantined rows / rows read exceed this share
    max_unreadable_files: int = 0  # exit non-zero when more event files than this cannot be read (a file is
    # a whole day of logs: none may go missing unnoticed); every unreadable file is named in the report
    future_tolerance_s: int = (
        300  # timestamps up to this many seconds after "now" count as clock skew, not future
    )

    def __post_init__(self) -> None:
        if self.batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", self.memory_limit):
            raise ValueError(f"memory_limit must look like '512MB' or '2GB', got {self.memory_limit!r}")
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        if not 0 <= self.max_quarantine_share <= 1:
            raise ValueError("max_quarantine_share must be between 0 and 1")
        if self.max_unreadable_files < 0:
            raise ValueError("max_unreadable_files must be >= 0")
        if self.future_tolerance_s < 0:
            raise ValueError("future_tolerance_s must be >= 0")


@dataclass
class ValidationConfig:
    """Thresholds of the Great Expectations suites run by ``caig data validate``."""

    max_row_count_drift: float = 0.5  # stats row count may change by at most this share vs the previous run
    freshness_max_age_days: int | None = 2  # newest stats date at most this many days before "now"; null: off
    max_ctr: float = 0.5  # a creative-day-segment CTR above this is implausible for display ads
    events_sample_rows: int = 200_000  # accepted events sampled (bounded memory) for the events suite

    def __post_init__(self) -> None:
        if self.max_row_count_drift < 0:
            raise ValueError("max_row_count_drift must be >= 0")
        if self.freshness_max_age_days is not None and self.freshness_max_age_days < 0:
            raise ValueError("freshness_max_age_days must be >= 0 (or null to switch the check off)")
        if not 0 < self.max_ctr <= 1:
            raise ValueError("max_ctr must be in (0, 1]")
        if self.events_sample_rows < 1:
            raise ValueError("events_sample_rows must be at least 1")


@dataclass
class SplitConfig:
    """Train/test split of reward-model pairs by product (no product on both sides)."""

    test_share: float = 0.2  # share of products (with at least one pair) held out for the test split
    seed: int = 0  # seeds the pair sampling and which products go to test

    def __post_init__(self) -> None:
        if not 0 <= self.test_share < 1:
            raise ValueError("test_share must be in [0, 1)")


@dataclass
class CaigImportConfig:
    """Field names of the official CAIG data release (REFERENCE.md) read by ``caig data import``."""

    impressions_field: str = "exp_impression_cnt"  # impressions of a creative
    clicks_field: str = "exp_click_cnt"  # clicks of a creative
    image_field: str = "creative_image_hash"  # image file name (its basename) under the images folder
    creative_field: str = "creative_id"  # creative id, the key of the captions file
    product_field: str = "item_id"  # product id inside an entry; the entry's key is used when it is absent
    caption_fields: list[str] = field(default_factory=lambda: ["caption", "new_caption"])  # first one present
    product_id_field: str = "id"  # product id in the products file
    product_image_field: str = "image"  # product image (RGBA png; alpha is the mask) under the product images
    segment: str = "all"  # the release has no segments: every row gets this one

    def __post_init__(self) -> None:
        if not self.caption_fields:
            raise ValueError("caption_fields must name at least one field")
        if not self.segment:
            raise ValueError("segment must be a non-empty string")


@dataclass
class DataConfig:
    """Everything the data stage reads from the profile."""

    pairs: PairRuleConfig = field(default_factory=PairRuleConfig)  # the TEST pair rule (caig data pairs)
    ingest: IngestConfig = field(default_factory=IngestConfig)  # caig data ingest
    validation: ValidationConfig = field(default_factory=ValidationConfig)  # caig data validate
    split: SplitConfig = field(default_factory=SplitConfig)  # train/test split of the pairs by product
    caig_import: CaigImportConfig = field(default_factory=CaigImportConfig)  # caig data import
