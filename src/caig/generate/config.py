"""Config of the generate stage: which products get new creatives, how many are written, how many kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from caig.mllm.templates import PM_TEMPLATES


@dataclass
class OnlineTestConfig:
    """The online A/B of generated creatives, simulated (the paper's Table 2 analogue; evaluation only).

    Simulated users click with the world's true CTR; the selector's Thompson sampling serves the same
    traffic and click draws to three arms sets: the logged creatives, plus PCPO's, plus DPO's.
    """

    products: int = 60  # held-out products that get generated creatives and traffic (0: every held-out one)
    n_impressions: int = 50_000  # simulated impressions over those products, drawn like the logs
    batch_size: int = 200  # impressions between posterior updates (delayed feedback)
    seed: int = 0  # traffic and click seed (the benchmark runs several)

    def __post_init__(self) -> None:
        if self.products < 0 or self.n_impressions < 1 or self.batch_size < 1:
            raise ValueError("products must be >= 0, n_impressions and batch_size >= 1")


@dataclass
class GenerateConfig:
    """Creative generation for a catalog (``caig generate``)."""

    products: Literal["all", "listed", "fewer_than"] = "fewer_than"  # which products get new creatives
    product_ids: list[str] = field(default_factory=list)  # products: listed -> these product ids
    min_creatives: int = 3  # products: fewer_than -> products with fewer creatives than this
    fatigue_margin: float = 0.0  # products: fewer_than -> also those whose recent CTR fell this share below
    # their running mean (0.2: 20% below); 0 turns the fatigue trigger off
    fatigue_days: int = 3  # the recent window (last days of the logs) the fatigue trigger compares
    fatigue_min_impressions: int = 200  # fewer recent impressions than this: too few to call fatigue
    candidates: int = 4  # K: descriptions the PM writes (and the renderer paints) per product
    keep: int = 2  # M: best candidates by the RM registered per product
    template: int = 0  # Table 4 PM template (index) the PM is asked with, as the PM server does
    temperature: float = 1.0  # PM sampling temperature (paper: 1.0)
    max_new_tokens: int = 40  # longest description
    seed: int = 0  # sampling and render seeds derive from it (a re-run makes the same candidates)
    online: OnlineTestConfig = field(default_factory=OnlineTestConfig)  # the simulated A/B (Table 2)

    def __post_init__(self) -> None:
        if self.products == "listed" and not self.product_ids:
            raise ValueError("products: listed needs product_ids, e.g. [P00001, P00002]")
        if self.products != "listed" and self.product_ids:
            raise ValueError("product_ids is read only with products: listed")
        if self.min_creatives < 1:
            raise ValueError("min_creatives must be >= 1")
        if self.candidates < 1 or not 1 <= self.keep <= self.candidates:
            raise ValueError(f"candidates must be >= 1 and keep between 1 and candidates ({self.candidates})")
        if not 0 <= self.template < len(PM_TEMPLATES):
            raise ValueError(f"template must be between 0 and {len(PM_TEMPLATES) - 1}")
        if self.temperature < 0 or self.max_new_tokens < 1:
            raise ValueError("temperature must be >= 0 and max_new_tokens >= 1")
        if not 0 <= self.fatigue_margin < 1:
            raise ValueError("fatigue_margin must be in [0, 1): the share below the running mean (0: off)")
        if self.fatigue_days < 1 or self.fatigue_min_impressions < 0:
            raise ValueError("fatigue_days must be >= 1 and fatigue_min_impressions >= 0")
