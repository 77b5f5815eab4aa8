"""A bandit arena whose users are the logs: no oracle, so it may tune what serves.

``caig.bandit.simulate`` lets the world's oracle play the users, which is for evaluation only. Choosing how
far the selector should trust the RM's priors must not read it, so this arena replays the logs instead: each
(product, creative, segment) clicks at its logged CTR (``clicks + 1`` over ``impressions + 2``), products
come as often as in the logs and segments by their logged mix. The logging policy of the world (and of a
platform that rotates creatives) spreads impressions independently of the outcome, so every arm's logged
CTR is an unbiased estimate of its CTR; an arm with few impressions is noisier, never biased.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from caig.bandit.config import SimulateConfig
from caig.bandit.simulate import Arena, BetaTS, draw_traffic, prior_arrays, run_policy
from caig.errors import UserError


@dataclass
class LoggedArena:
    """The arena (``true_ctr`` = logged CTR) and the logged segment mix its traffic is drawn with."""

    arena: Arena
    segment_mix: list[float]


def logged_arena(data_dir: str | Path) -> LoggedArena:
    """Lay out ``data_dir``'s creatives with their logged CTR per segment (its ``events/``)."""
    data_dir = Path(data_dir)
    if not (data_dir / "events").is_dir():
        raise UserError(f"{data_dir} holds no events/ directory; build a world or import logs first")
    columns = ["product_id", "creative_id", "segment", "clicked"]
    events = ds.dataset(data_dir / "events", format="parquet").to_table(columns=columns).to_pandas()
    grouped = events.groupby(["product_id", "creative_id", "segment"]).clicked.agg(["size", "sum"])
    counts = dict(zip(grouped.index, zip(grouped["size"], grouped["sum"], strict=True), strict=True))
    segments = sorted(events["segment"].unique())
    creatives = pd.read_parquet(data_dir / "creatives.parquet").sort_values(["product_id", "creative_id"])
    products = sorted(creatives["product_id"].unique())
    groups = dict(list(creatives.groupby("product_id")))
    k = max(len(g) for g in groups.values())
    ids = np.full((len(products), k), "", dtype=object)
    ctr = np.zeros((len(products), k, len(segments)))
    for p, pid in enumerate(products):
        for j, cid in enumerate(groups[pid]["creative_id"]):
            ids[p, j] = cid
            for s, segment in enumerate(segments):
                n, c = counts.get((pid, cid, segment), (0, 0))
                ctr[p, j, s] = (c + 1.0) / (n + 2.0)
    per_product = events.groupby("product_id").size().reindex(products, fill_value=0).to_numpy(float) + 1.0
    mix = events["segment"].value_counts(normalize=True).reindex(segments).to_numpy(float)
    arena = Arena(products, segments, ids, ids != "", ctr, per_product / per_product.sum())
    return LoggedArena(arena, mix.tolist())


def replay_regret(logged: LoggedArena, priors: pd.DataFrame | None, config: SimulateConfig) -> float:
    """Cumulative regret (against each context's best logged CTR) of our TS with ``priors`` (None: Beta(1, 1))."""
    arena = logged.arena
    alpha, beta = prior_arrays(arena, priors)
    ctx, u = draw_traffic(arena, logged.segment_mix, config)
    policy = BetaTS(alpha, beta, len(arena.segments), config.seed)
    return float(run_policy(policy, arena, ctx, u, config, "log replay")["regret"].sum())
