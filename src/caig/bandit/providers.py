"""Where the selector's candidates and priors come from: parquet files (embedded default) or Feast online.

A provider answers ``candidates(product_id) -> list[Arm]`` (raising ``InvalidRequest`` for an unknown
product). The parquet provider reads the same data that Feast serves online (catalog, creatives and the RM
priors table ``rm_priors.parquet``: creative_id, product_id, rm_score, prior_alpha, prior_beta,
event_timestamp), so the selector works with no feature store.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import pandas as pd

from caig.bandit.types import Arm, InvalidRequest
from caig.errors import UserError

log = logging.getLogger("caig.bandit")

PRIOR_COLUMNS = ("creative_id", "prior_alpha", "prior_beta")


class CandidateProvider(Protocol):
    """Candidates (creatives with priors) of a product."""

    has_priors: bool

    def candidates(self, product_id: str) -> list[Arm]: ...


class TableProvider:
    """Candidates from in-memory tables: creatives (creative_id, product_id) and optional priors."""

    def __init__(
        self, creatives: pd.DataFrame, priors: pd.DataFrame | None = None, products: list[str] | None = None
    ):
        self.has_priors = priors is not None and len(priors) > 0
        self.rejected_priors = 0
        prior_of = self._latest_priors(priors) if priors is not None else {}
        arms: dict[str, list[Arm]] = {pid: [] for pid in (products or [])}
        for row in creatives.sort_values(["product_id", "creative_id"]).itertuples(index=False):
            alpha, beta = prior_of.get(row.creative_id, (1.0, 1.0))
            arms.setdefault(row.product_id, []).append(Arm(row.creative_id, alpha, beta))
        self._arms = arms
        missing = sum(1 for a in arms.values() for arm in a if arm.creative_id not in prior_of)
        if self.has_priors and missing:
            log.warning("%d creatives have no RM prior; they start from Beta(1, 1)", missing)

    def _latest_priors(self, priors: pd.DataFrame) -> dict[str, tuple[float, float]]:
        absent = [c for c in PRIOR_COLUMNS if c not in priors.columns]
        if absent:
            raise UserError(f"priors table lacks columns {absent}; it needs {list(PRIOR_COLUMNS)}")
        if "event_timestamp" in priors.columns:
            priors = priors.sort_values("event_timestamp")
        latest = priors.drop_duplicates("creative_id", keep="last")
        valid = (latest.prior_alpha > 0) & (latest.prior_beta > 0)
        self.rejected_priors = int((~valid).sum())
        if self.rejected_priors:
            log.warning(
                "%d priors rejected (prior_alpha and prior_beta must be > 0); those creatives start "
                "from Beta(1, 1)",
                self.rejected_priors,
            )
        latest = latest[valid]
        return dict(
            zip(
                latest.creative_id,
                zip(latest.prior_alpha.astype(float), latest.prior_beta.astype(float), strict=True),
                strict=True,
            )
        )

    def candidates(self, product_id: str) -> list[Arm]:
        arms = self._arms.get(product_id)
        if arms is None:
            raise InvalidRequest("product_id", f"unknown product '{product_id}'; it is not in the catalog")
        if not arms:
            raise InvalidRequest("product_id", f"product '{product_id}' has no creatives to select from")
        return arms

    cached = candidates  # all in memory: answering never does I/O


def parquet_provider(catalog: Path, creatives: Path, priors: Path | None) -> TableProvider:
    """The embedded default: catalog, creatives and (if the file exists) RM priors from parquet files."""
    for name, path in (("catalog", catalog), ("creatives", creatives)):
        if not path.is_file():
            raise UserError(
                f"{name} file {path} does not exist; build a world (`caig world build`) or set "
                f"bandit.{name}_path"
            )
    products = pd.read_parquet(catalog, columns=["product_id"]).product_id.tolist()
    table = pd.read_parquet(creatives, columns=["creative_id", "product_id"])
    prior_table = None
    if priors is not None and priors.is_file():
        prior_table = pd.read_parquet(priors)
        log.info("RM priors from %s (%d rows)", priors, len(prior_table))
    else:
        log.warning("no RM priors table at %s: every creative starts from Beta(1, 1)", priors)
    return TableProvider(table, prior_table, products)
