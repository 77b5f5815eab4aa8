"""Config of the simulated e-commerce world (the embedded default data)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WorldConfig:
    """Sizes and effect strengths of the simulated world; the seed is given at build time.

    Effects are on the logit of the click probability; their per-term and per-segment values are drawn
    from the seed and never written to disk, so only the oracle (``load_world``) knows them.
    """

    n_products: int = 300  # products in the catalog
    n_categories: int = 12  # categories used, at most the 12 the vocabulary defines
    n_creatives_per_product: int = 8  # existing ad creatives per product
    n_events: int = 3_000_000  # impressions logged in total
    n_days: int = 14  # days of logs, one events/ partition per day
    start_date: str = "2026-10-01"  # first day of the logs (UTC)
    image_size: int = 128  # side of product and creative images, pixels
    # audience segments of the simulated traffic, in the order of segment_mix
    segments: list[str] = field(default_factory=lambda: ["young", "family", "professional", "senior"])
    segment_mix: list[float] = field(default_factory=lambda: [0.35, 0.3, 0.2, 0.15])  # share of traffic
    base_ctr: float = 0.035  # CTR of an average product on a neutral background
    product_appeal_sd: float = 0.3  # spread of products' intrinsic appeal (logit)
    eye_catching_effect: float = 0.45  # generic lift of an eye-catching term, for nearly every product
    compatibility_effect: float = 0.55  # scene fits category (+) or clashes with it (-)
    scale_effect: float = 0.35  # framing and props at the product's scale (+) or not (-)
    harmony_effect: float = 0.4  # colour harmony of palette and product colour
    term_effect_sd: float = 0.08  # small idiosyncratic effect of every term
    segment_taste_sd: float = 0.25  # how much segments differ in taste for lighting and style
    impression_skew: float = 1.0  # log-normal sigma of how unevenly impressions spread over creatives
    eye_catching_rate: float = 0.25  # share of existing creatives that use an eye-catching term
    contact_sheet_products: int = 12  # rows of the contact sheet
    market_seed: int = 0  # draws the market's hidden tastes (term and segment effects); a world seed draws
    #   products, creatives and logs, so worlds of other seeds are held-out data from the same market

    def __post_init__(self) -> None:
        if self.n_products < 2:
            raise ValueError("n_products must be at least 2")
        if not 1 <= self.n_categories <= 12:
            raise ValueError("n_categories must be between 1 and 12 (the vocabulary's categories)")
        if self.n_creatives_per_product < 1:
            raise ValueError("n_creatives_per_product must be at least 1")
        if self.n_events < 1 or self.n_days < 1:
            raise ValueError("n_events and n_days must be positive")
        if self.image_size < 32:
            raise ValueError("image_size must be at least 32 pixels")
        if len(self.segments) != len(self.segment_mix) or not self.segments:
            raise ValueError("segments and segment_mix must be non-empty lists of the same length")
        if abs(sum(self.segment_mix) - 1.0) > 1e-6 or min(self.segment_mix) < 0:
            raise ValueError("segment_mix must be non-negative shares that sum to 1")
        if not 0 < self.base_ctr < 1:
            raise ValueError("base_ctr must be between 0 and 1")
