"""RM priors for the creative selector: every product's creatives ranked by the reward model.

The refresh pipeline's re-ranking step (and the training pipeline after the RM): for each product, the RM
scores every ordered pair of its creatives in both orders (``caig.reward.scoring.RewardScorer``), and a
Bradley-Terry fit (``caig.reward.rank.rank``) turns the pair matrix into one log-strength per creative.
A creative's Beta prior on its CTR then centres on the product's logged CTR scaled by its relative
strength, ``m_c = ctr_p * exp(T s_c) / mean_j exp(T s_j)`` (``T``: ``prior_temperature``, 1 unless
calibrated by ``caig.orchestration.prior_calibration``), worth ``prior_strength`` pseudo-impressions:
``alpha = n * m_c``, ``beta = n * (1 - m_c)``. ``rm_score`` is the creative's mean swap-consistent win
probability against the product's other creatives (0.5: average). The table follows
``caig.features.priors.RM_PRIOR_SCHEMA``; ``ranking.parquet`` lists each product's creatives best first.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from caig.errors import UserError
from caig.features.priors import write_rm_priors
from caig.orchestration.config import RefreshConfig

log = logging.getLogger("caig.orchestration")


@dataclass
class PriorsResult:
    """What the re-ranking wrote: the priors table, the ranking, and counts for the run's metrics."""

    priors: pd.DataFrame
    ranking: pd.DataFrame
    summary: dict[str, Any]


def product_ctr(stats: pd.DataFrame) -> pd.Series:
    """Logged CTR per product from daily stats (``product_id, impressions, clicks``), Laplace-smoothed."""
    totals = stats.groupby("product_id")[["impressions", "clicks"]].sum()
    return (totals["clicks"] + 1.0) / (totals["impressions"] + 2.0)


def prior_means(scores: np.ndarray, ctr: float, temperature: float = 1.0) -> np.ndarray:
    """Prior CTR means of one product's creatives from their BT log-strengths scaled by ``temperature``
    (``caig.orchestration.prior_calibration`` fits it), kept inside (0, 1)."""
    scores = np.asarray(scores, dtype=float)
    return grouped_prior_means(scores, np.full(len(scores), ctr), np.zeros(len(scores), int), temperature)


def grouped_prior_means(
    scores: np.ndarray, ctr: np.ndarray, product: np.ndarray, temperature: float = 1.0
) -> np.ndarray:
    """``ctr_p * exp(T s_c) / mean_j exp(T s_j)`` over each product's creatives at once (``product``: one
    label per creative; ``ctr``: its product's CTR), kept inside (0, 1)."""
    frame = pd.DataFrame({"p": product, "x": temperature * np.asarray(scores, dtype=float)})
    weights = np.exp(frame["x"] - frame.groupby("p")["x"].transform("max"))
    mean_weight = weights.groupby(frame["p"]).transform("mean")
    return np.clip(np.asarray(ctr, dtype=float) * (weights / mean_weight).to_numpy(), 1e-4, 1 - 1e-4)


def score_creatives(
    scorer: Any,
    world_dir: Path,
    stats: pd.DataFrame,
    config: RefreshConfig,
    scored_at: datetime,
) -> PriorsResult:
    """Rank every product's creatives with the RM ``scorer``; products in catalog order.

    Args:
        scorer: a ``RewardScorer`` (``pair_matrix(product, images)``).
        world_dir: data directory with ``catalog.parquet``, ``creatives.parquet`` and their images.
        stats: ingested daily stats (``product_id, impressions, clicks``) for the products' logged CTRs.
        config: ``prior_strength`` (pseudo-impressions behind each prior), ``prior_temperature`` (scales the
            log-strengths) and ``max_products`` (score only the first N products, 0: all; the rest are
            counted as not scored).
        scored_at: the priors' ``event_timestamp`` (timezone-aware).
    """
    from caig.reward.rank import rank

    catalog = pd.read_parquet(world_dir / "catalog.parquet")
    creatives = pd.read_parquet(world_dir / "creatives.parquet").sort_values("creative_id")
    by_product = dict(tuple(creatives.groupby("product_id")))
    ctr = product_ctr(stats)
    fallback = float(stats["clicks"].sum() + 1.0) / float(stats["impressions"].sum() + 2.0)
    products = catalog.to_dict("records")
    chosen = products[: config.max_products] if config.max_products else products
    priors, ranking = [], []
    for product in tqdm(chosen, desc="rm priors", unit="product", leave=False):
        mine = by_product.get(product["product_id"])
        if mine is None:
            continue
        if "tags" in product:  # a real catalog may have no tags
            product = {**product, "tags": list(product["tags"])}
        images = [Image.open(world_dir / p).convert("RGB") for p in mine["image_path"]]
        ranked = rank(scorer, product, images)
        ctr_of = float(ctr.get(product["product_id"], fallback))
        rows, order = _product_rows(
            ranked, product["product_id"], mine["creative_id"].tolist(), ctr_of, config, scored_at
        )
        priors += rows
        ranking += order
    frame = pd.DataFrame(priors)
    summary = {
        "products_scored": len({p["product_id"] for p in priors}),
        "products_not_scored": len(products) - len({p["product_id"] for p in priors}),
        "creatives_scored": len(frame),
        "prior_strength": config.prior_strength,
        "prior_temperature": config.prior_temperature,
    }
    return PriorsResult(frame, pd.DataFrame(ranking), summary)


def _product_rows(
    ranked: Any, product_id: str, ids: list[str], ctr: float, config: RefreshConfig, scored_at: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One product's rows: each creative's prior (its RM win share, and a Beta prior around the product's
    logged ``ctr`` moved by its log-strength) and its ranking (the creatives best first). ``ranked``: what
    ``caig.reward.rank.rank`` returned for the creatives ``ids``, in that order."""
    k = len(ids)
    wins = (ranked.win_prob.sum(axis=1) - 0.5) / max(k - 1, 1) if k > 1 else np.full(1, 0.5)
    means = prior_means(ranked.scores, ctr, config.prior_temperature)
    prior_strength = config.prior_strength
    priors = [
        {
            "creative_id": cid,
            "product_id": product_id,
            "rm_score": float(np.clip(wins[i], 0.0, 1.0)),
            "prior_alpha": prior_strength * means[i],
            "prior_beta": prior_strength * (1.0 - means[i]),
            "event_timestamp": pd.Timestamp(scored_at).tz_convert("UTC"),
        }
        for i, cid in enumerate(ids)
    ]
    ranking = [
        {"product_id": product_id, "rank": r, "creative_id": ids[i], "log_strength": ranked.scores[i]}
        for r, i in enumerate(ranked.order)
    ]
    return priors, ranking


def write_priors(result: PriorsResult, out: Path) -> dict[str, Any]:
    """``out/rm_priors.parquet`` (checked against the features' schema) and ``out/ranking.parquet``."""
    out.mkdir(parents=True, exist_ok=True)
    write_rm_priors(result.priors, out / "rm_priors.parquet")
    result.ranking.to_parquet(out / "ranking.parquet", index=False)
    log.info(
        "RM priors: %d creatives of %d products -> %s",
        len(result.priors),
        result.summary["products_scored"],
        out,
    )
    return result.summary


def rank_into_priors(
    rm_dir: Path,
    data_dir: Path,
    out: Path,
    refresh: RefreshConfig,
    scored_at: datetime,
    stats: pd.DataFrame | None = None,
    calibration: Path | None = None,
) -> dict[str, Any]:
    """``caig rm priors`` and the refresh pipeline's re-ranking step: ``score_creatives`` with the RM saved in
    ``rm_dir``, then ``write_priors`` to ``out``; the counts.

    ``stats``: the products' logged impressions and clicks (ingested daily stats); None counts them from
    ``data_dir``'s events. ``calibration``: a ``prior_calibration.json`` whose temperature and strength
    replace ``refresh``'s (``apply_calibration``).
    """
    from caig.data.event_pairs import creative_totals_from_events
    from caig.reward.scoring import RewardScorer

    if calibration is not None:
        refresh = apply_calibration(refresh, calibration)
    if stats is None:  # per-creative totals: score_creatives sums them by product
        stats = creative_totals_from_events(data_dir)
    result = score_creatives(RewardScorer.from_dir(rm_dir), data_dir, stats, refresh, scored_at)
    return write_priors(result, out)


def apply_calibration(config: RefreshConfig, path: Path) -> RefreshConfig:
    """``config`` with the ``prior_temperature`` and ``prior_strength`` of a ``prior_calibration.json``."""
    hint = "write it with `caig rm calibrate-priors`"
    try:
        fitted = json.loads(Path(path).read_text())
        return replace(
            config,
            prior_temperature=float(fitted["prior_temperature"]),
            prior_strength=float(fitted["prior_strength"]),
        )
    except json.JSONDecodeError as err:
        raise UserError(f"--calibration {path} is not JSON ({err}); {hint}") from None
    except KeyError as err:
        raise UserError(f"--calibration {path} lacks {err}; {hint}") from None
    except (TypeError, ValueError) as err:  # a non-number, or a value RefreshConfig refuses
        raise UserError(f"--calibration {path}: {err}; {hint}") from None
