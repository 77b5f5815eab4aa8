"""The simulated ad server: creatives laid out as arrays, traffic drawn like the logs, Thompson sampling served
batch by batch with delayed feedback. Shared by ``caig bandit simulate``, the log replay and the online A/B of
generated creatives (``caig.evaluate.online``); it needs numpy and the selector's policy, nothing else.

Every policy served here faces the same traffic and the same click randomness (a click is ``u < true_ctr``
with one shared ``u`` per impression), so results differ only by the choices made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from caig.bandit.config import SimulateConfig
from caig.bandit.policy import choice_probabilities, posterior, thompson_choice
from caig.errors import UserError

OPE_PROPENSITY_SAMPLES = 400  # MC draws per (context, batch) for the logged propensities of the OPE check


@dataclass
class Arena:
    """Products x creatives laid out as arrays; contexts are (product, segment) pairs, ``c = p * S + s``."""

    products: list[str]
    segments: list[str]
    creative_ids: np.ndarray  # (P, K) object; '' pads products with fewer than K creatives
    valid: np.ndarray  # (P, K) bool
    true_ctr: np.ndarray  # (P, K, S) oracle CTR: the simulator's users, never seen by a policy
    traffic_weight: np.ndarray  # (P,) share of impressions per product, from the logs


def layout_arena(
    creatives: pd.DataFrame,
    products: list[str],
    segments: list[str],
    ctr_of: Callable[[str, Any], list[float]],
    impressions_per_product: np.ndarray,
    desc: str,
) -> Arena:
    """Products x creatives as arrays; ``ctr_of(product_id, creative_row)`` gives a creative's CTR per
    segment; products are drawn like ``impressions_per_product`` (+1 each, so none is never drawn)."""
    creatives = creatives.sort_values(["product_id", "creative_id"])
    groups = dict(list(creatives.groupby("product_id")))
    k = max(len(g) for g in groups.values())
    ids = np.full((len(products), k), "", dtype=object)
    ctr = np.zeros((len(products), k, len(segments)))
    for p, pid in enumerate(tqdm(products, desc=desc, leave=False)):
        g = groups.get(pid)
        if g is None:
            continue
        for j, row in enumerate(g.itertuples(index=False)):
            ids[p, j] = row.creative_id
            ctr[p, j] = ctr_of(pid, row)
    counts = np.asarray(impressions_per_product, dtype=float) + 1.0
    return Arena(products, segments, ids, ids != "", ctr, counts / counts.sum())


LOGGED_EVENT_COLUMNS = ("product_id", "creative_id", "clicked", "ts")


def read_logged_events(world_dir: Path, columns: tuple[str, ...] = LOGGED_EVENT_COLUMNS) -> pd.DataFrame:
    """The world's logged impressions (``columns`` of ``events/``), read column-wise."""
    files = sorted((Path(world_dir) / "events").rglob("*.parquet"))
    if not files:
        raise UserError(f"{world_dir} holds no events/*.parquet; build a world or import logs first")
    return pd.concat([pq.read_table(f, columns=list(columns)).to_pandas() for f in files], ignore_index=True)


class BetaTS:
    """Our selector's policy (``policy.posterior`` + ``policy.thompson_choice``), batched over impressions."""

    def __init__(self, prior_alpha: np.ndarray, prior_beta: np.ndarray, n_segments: int, seed: int):
        self.prior_alpha = np.repeat(prior_alpha, n_segments, axis=0)  # (C, K)
        self.prior_beta = np.repeat(prior_beta, n_segments, axis=0)
        self.n = np.zeros_like(self.prior_alpha)
        self.c = np.zeros_like(self.prior_alpha)
        self.rng = np.random.default_rng(seed)

    def posterior(self, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return posterior(self.prior_alpha[ctx], self.prior_beta[ctx], self.n[ctx], self.c[ctx])

    def choose(self, ctx: np.ndarray) -> np.ndarray:
        return thompson_choice(*self.posterior(ctx), self.rng)

    def update(self, ctx: np.ndarray, arm: np.ndarray, clicked: np.ndarray) -> None:
        np.add.at(self.n, (ctx, arm), 1.0)
        np.add.at(self.c, (ctx, arm), clicked.astype(float))


def draw_traffic(
    arena: Arena, segment_mix: list[float], config: SimulateConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Contexts of every impression (products like the logs, segments by the mix) and click uniforms."""
    rng = np.random.default_rng([config.seed, 1])
    product = rng.choice(len(arena.products), size=config.n_impressions, p=arena.traffic_weight)
    segment = rng.choice(len(arena.segments), size=config.n_impressions, p=segment_mix)
    return product * len(arena.segments) + segment, rng.random(config.n_impressions)


def run_policy(
    policy,
    arena: Arena,
    ctx: np.ndarray,
    u: np.ndarray,
    config: SimulateConfig,
    name: str,
    log_propensity: bool = False,
) -> dict:
    """Serve the traffic batch by batch; return per-impression arms, clicks, regret (and propensities)."""
    truth = arena.true_ctr.transpose(0, 2, 1).reshape(-1, arena.true_ctr.shape[1])  # (C, K)
    truth = np.where(np.repeat(arena.valid, len(arena.segments), axis=0), truth, -1.0)
    arms = np.empty(len(ctx), dtype=int)
    propensity = np.full(len(ctx), np.nan)
    prop_rng = np.random.default_rng([config.seed, 2])
    for start in tqdm(range(0, len(ctx), config.batch_size), desc=name, leave=False):
        sl = slice(start, start + config.batch_size)
        batch = ctx[sl]
        arms[sl] = policy.choose(batch)
        if log_propensity:
            propensity[sl] = _batch_propensities(policy, batch, arms[sl], prop_rng)
        clicked = u[sl] < truth[batch, arms[sl]]
        policy.update(batch, arms[sl], clicked)
    chosen = truth[ctx, arms]
    regret = truth[ctx].max(axis=1) - chosen
    return {"arms": arms, "clicked": u < chosen, "regret": regret, "propensity": propensity}


def _batch_propensities(
    policy: BetaTS, batch: np.ndarray, arms: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    out = np.empty(len(batch))
    for c in np.unique(batch):
        where = batch == c
        alpha, beta = policy.posterior(np.array([c]))
        out[where] = choice_probabilities(alpha[0], beta[0], OPE_PROPENSITY_SAMPLES, rng)[arms[where]]
    return out


def arena_best(arena: Arena, ctx: np.ndarray) -> np.ndarray:
    """Best true CTR of each impression's context (what an oracle policy would expect to earn)."""
    best = np.where(arena.valid[:, :, None], arena.true_ctr, -1.0).max(axis=1)  # (P, S)
    return best.reshape(-1)[ctx]
