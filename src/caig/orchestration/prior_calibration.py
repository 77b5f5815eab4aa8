"""Calibrate the RM priors on held-out logs: how far to trust the RM's ranking, and how much.

``caig.orchestration.rm_priors`` turns a creative's Bradley-Terry log-strength ``s_c`` into a Beta prior
centred on ``m_c = ctr_p * exp(T s_c) / mean_j exp(T s_j)`` worth ``n`` pseudo-impressions. ``T = 1`` takes
the RM's strengths as they are: compressed ones (win probabilities near 0.5) under-use a ranking that is
right, and over-dispersed ones over-state it; ``n`` says how much the prior is worth against real clicks.
Both are fitted here by empirical Bayes: the creatives of a calibration world that the RM did not train on, with their logged impressions and
clicks, and the ``(T, n)`` that maximise the Beta-binomial marginal likelihood of those clicks. Nothing here
reads the oracle: the logs are what a platform has for its past creatives.

The fit also reports ``T = 0`` (every creative at its product's CTR, ``n`` refitted): the likelihood gained
over it is what the RM's ranking explains of the logged clicks.

The likelihood asks how well the priors predict the logged CTRs; the selector needs priors that lose the
fewest clicks, and a sharper prior can be worth more to it than a calibrated one (a wrong ranking costs a few
impressions before the clicks correct it). ``tune_for_regret`` therefore also searches a grid of ``(T, n)``
for the least regret of our Thompson sampling on a replay of the calibration world's logs
(``caig.bandit.log_replay``: the logged CTRs play the users; no oracle).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from tqdm import tqdm

from caig.bandit.arena import read_logged_events
from caig.bandit.config import SimulateConfig
from caig.bandit.log_replay import REPLAY_EVENT_COLUMNS, LoggedArena, arena_from_logs, replay_regret
from caig.data.event_pairs import creative_totals_of_events
from caig.errors import UserError
from caig.orchestration.config import PRIOR_CALIBRATION_OBJECTIVES, RefreshConfig
from caig.orchestration.rm_priors import grouped_prior_means, product_ctr, score_creatives

log = logging.getLogger("caig.orchestration")

MAX_TEMPERATURE = 50.0
REGRET_TEMPERATURES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
REGRET_STRENGTHS = (5.0, 10.0, 25.0, 50.0, 100.0, 200.0)
REPLAY_SEEDS = 3  # traffic seeds averaged per grid point: one replay's regret varies by a few percent
STRENGTH_RANGE = (1.0, 1e5)  # pseudo-impressions searched


@dataclass
class PriorCalibration:
    """Fitted ``prior_temperature`` and ``prior_strength``, with the evidence for them."""

    prior_temperature: float
    prior_strength: float
    loglik: float  # Beta-binomial log-likelihood of the logged clicks at the fit
    loglik_product_only: float  # the same with T = 0 (no RM ranking), n refitted
    strength_product_only: float
    loglik_gain_per_creative: float  # (loglik - loglik_product_only) / creatives
    creatives: int
    products: int
    impressions: int
    clicks: int


def profile_overrides(temperature: float, strength: float) -> list[str]:
    """The profile overrides (``--set`` lines) that apply a calibration."""
    return [
        f"orchestration.refresh.prior_temperature={temperature:.4g}",
        f"orchestration.refresh.prior_strength={strength:.4g}",
    ]


def calibration_frame(ranking: pd.DataFrame, totals: pd.DataFrame) -> pd.DataFrame:
    """One row per ranked creative: product, log-strength, logged impressions and clicks (0 where it has
    none) and the product's logged CTR, exactly as ``rm_priors.score_creatives`` centres the priors."""
    for name, frame, columns in (
        ("ranking", ranking, ("product_id", "creative_id", "log_strength")),
        ("totals", totals, ("creative_id", "product_id", "impressions", "clicks")),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise UserError(f"the {name} table lacks column(s) {missing}; expected {list(columns)}")
    frame = ranking[["product_id", "creative_id", "log_strength"]].merge(
        totals[["creative_id", "impressions", "clicks"]], on="creative_id", how="left"
    )
    frame[["impressions", "clicks"]] = frame[["impressions", "clicks"]].fillna(0).astype(int)
    if frame["impressions"].sum() == 0:
        raise UserError("no ranked creative has logged impressions: calibrate on a world with events")
    fallback = float(totals["clicks"].sum() + 1.0) / float(totals["impressions"].sum() + 2.0)
    frame["product_ctr"] = frame["product_id"].map(product_ctr(totals)).fillna(fallback)
    return frame.reset_index(drop=True)


def calibrated_means(frame: pd.DataFrame, temperature: float) -> np.ndarray:
    """Prior means at temperature ``T`` (``rm_priors.grouped_prior_means``: the serving formula)."""
    return grouped_prior_means(
        frame["log_strength"].to_numpy(float),
        frame["product_ctr"].to_numpy(),
        frame["product_id"],
        temperature,
    )


def beta_binomial_loglik(frame: pd.DataFrame, temperature: float, strength: float) -> float:
    """Log-likelihood of every creative's logged clicks under its Beta(n m, n (1 - m)) prior (a creative
    without impressions adds 0)."""
    means = calibrated_means(frame, temperature)
    return float(
        stats.betabinom.logpmf(
            frame["clicks"].to_numpy(),
            frame["impressions"].to_numpy(),
            strength * means,
            strength * (1.0 - means),
        ).sum()
    )


def _fit_strength(frame: pd.DataFrame, temperature: float) -> tuple[float, float]:
    """Best ``n`` (searched on a log scale) at a fixed temperature, and its log-likelihood."""
    result = optimize.minimize_scalar(
        lambda log_n: -beta_binomial_loglik(frame, temperature, float(np.exp(log_n))),
        bounds=tuple(np.log(STRENGTH_RANGE)),
        method="bounded",
    )
    return float(np.exp(result.x)), float(-result.fun)


def fit_prior_calibration(frame: pd.DataFrame) -> PriorCalibration:
    """Maximise the marginal likelihood over ``T`` in [0, 50] (with ``n`` refitted at each ``T``)."""
    result = optimize.minimize_scalar(
        lambda t: -_fit_strength(frame, float(t))[1], bounds=(0.0, MAX_TEMPERATURE), method="bounded"
    )
    temperature = float(result.x)
    strength, loglik = _fit_strength(frame, temperature)
    strength0, loglik0 = _fit_strength(frame, 0.0)
    if loglik0 > loglik:  # the bounded search can miss T = 0 by a hair
        temperature, strength, loglik = 0.0, strength0, loglik0
    calibration = PriorCalibration(
        prior_temperature=temperature,
        prior_strength=strength,
        loglik=loglik,
        loglik_product_only=loglik0,
        strength_product_only=strength0,
        loglik_gain_per_creative=(loglik - loglik0) / len(frame),
        creatives=len(frame),
        products=int(frame["product_id"].nunique()),
        impressions=int(frame["impressions"].sum()),
        clicks=int(frame["clicks"].sum()),
    )
    log.info(
        "prior calibration: temperature %.3g, strength %.3g (log-lik gain %.3g per creative over T = 0)",
        temperature,
        strength,
        calibration.loglik_gain_per_creative,
    )
    return calibration


def priors_table(frame: pd.DataFrame, temperature: float, strength: float) -> pd.DataFrame:
    """The calibration creatives' Beta priors at ``(T, n)`` (the ``rm_priors`` columns a simulation reads)."""
    means = calibrated_means(frame, temperature)
    return pd.DataFrame(
        {
            "creative_id": frame["creative_id"],
            "product_id": frame["product_id"],
            "prior_alpha": strength * means,
            "prior_beta": strength * (1.0 - means),
        }
    )


def tune_for_regret(
    frame: pd.DataFrame,
    logged: LoggedArena,
    config: SimulateConfig,
    temperatures: tuple[float, ...] = REGRET_TEMPERATURES,
    strengths: tuple[float, ...] = REGRET_STRENGTHS,
) -> dict:
    """The ``(T, n)`` of the grid whose priors lose the fewest clicks on the log replay (mean over
    ``REPLAY_SEEDS`` traffic seeds from ``config.seed``), with the whole grid (regret, and its ratio to
    Thompson sampling without priors on the same replayed traffic)."""
    configs = [replace(config, seed=config.seed + k) for k in range(REPLAY_SEEDS)]

    def mean_regret(priors: pd.DataFrame | None) -> float:
        return float(np.mean([replay_regret(logged, priors, c) for c in configs]))

    no_prior = mean_regret(None)
    grid = []
    for temperature in tqdm(temperatures, desc="prior grid (temperatures)", leave=False):
        for strength in strengths:
            regret = mean_regret(priors_table(frame, temperature, strength))
            grid.append(
                {
                    "prior_temperature": temperature,
                    "prior_strength": strength,
                    "regret": regret,
                    "ratio_to_no_prior": regret / no_prior,
                }
            )
    best = min(grid, key=lambda row: row["regret"])
    log.info(
        "prior tuning on the log replay: T %.3g, n %.3g, regret %.4g of %.4g without priors",
        best["prior_temperature"],
        best["prior_strength"],
        best["regret"],
        no_prior,
    )
    return {
        "prior_temperature": best["prior_temperature"],
        "prior_strength": best["prior_strength"],
        "ratio_to_no_prior": best["ratio_to_no_prior"],
        "no_prior_regret": no_prior,
        "impressions": config.n_impressions,
        "seeds": [c.seed for c in configs],
        "grid": grid,
    }


def calibrate_priors(
    frame: pd.DataFrame, logged: LoggedArena, config: SimulateConfig, objective: str = "regret"
) -> dict:
    """Both fits, and the ``prior_temperature`` / ``prior_strength`` of the chosen ``objective`` at the top
    (what ``caig rm priors --calibration`` applies)."""
    if objective not in PRIOR_CALIBRATION_OBJECTIVES:
        raise UserError(
            f"unknown calibration objective '{objective}'; use one of {list(PRIOR_CALIBRATION_OBJECTIVES)}"
        )
    likelihood = asdict(fit_prior_calibration(frame))
    regret = tune_for_regret(frame, logged, config)
    chosen = regret if objective == "regret" else likelihood
    temperature, strength = chosen["prior_temperature"], chosen["prior_strength"]
    return {
        "objective": objective,
        "prior_temperature": temperature,
        "prior_strength": strength,
        "overrides": profile_overrides(temperature, strength),
        "likelihood": likelihood,
        "regret": regret,
    }


def calibrate_rm_priors(
    scorer: Any,
    data_dir: Path,
    refresh: RefreshConfig,
    replay: SimulateConfig,
    objective: str,
    scored_at: datetime,
) -> tuple[pd.DataFrame, dict]:
    """``caig rm calibrate-priors``: rank ``data_dir``'s creatives with the RM ``scorer`` (``refresh``:
    which products), then both fits on its logs (read once). Returns the ranking and ``calibrate_priors``'s
    result."""
    events = read_logged_events(data_dir, REPLAY_EVENT_COLUMNS)
    totals = creative_totals_of_events(events)
    ranked = score_creatives(scorer, data_dir, totals, refresh, scored_at).ranking
    creatives = pd.read_parquet(Path(data_dir) / "creatives.parquet")
    logged = arena_from_logs(creatives, events, products=set(ranked["product_id"]))
    return ranked, calibrate_priors(calibration_frame(ranked, totals), logged, replay, objective)


def write_prior_calibration(
    rm_dir: Path,
    data_dir: Path,
    out: Path,
    refresh: RefreshConfig,
    replay: SimulateConfig,
    objective: str,
    scored_at: datetime,
) -> dict[str, Any]:
    """``caig rm calibrate-priors``: ``calibrate_rm_priors`` with the RM saved in ``rm_dir``; writes
    ``out/ranking.parquet`` and ``out/prior_calibration.json`` (``caig rm priors --calibration`` reads it) and
    returns what it holds."""
    from caig.reward.scoring import RewardScorer

    ranking, fitted = calibrate_rm_priors(
        RewardScorer.from_dir(rm_dir), data_dir, refresh, replay, objective, scored_at
    )
    ranking.to_parquet(out / "ranking.parquet", index=False)
    (out / "prior_calibration.json").write_text(json.dumps(fitted, indent=2) + "\n")
    return fitted
