"""A bandit arena whose users are the logs: no oracle, so it may tune what serves.

``caig.bandit.simulate`` lets the world's oracle play the users, which is for evaluation only. Choosing how
far the selector should trust the RM's priors must not read it, so this arena replays the logs instead: each
(product, creative, segment) clicks at its logged CTR shrunk towards its product x segment CTR by
``shrinkage`` pseudo-impressions (a creative never shown in a segment gets the product's CTR there), products
come as often as in the logs and segments by their logged mix. The logging policy of the world (and of a
platform that rotates creatives) spreads impressions independently of the outcome, so the raw logged CTRs
are unbiased but noisy where impressions are few; the shrinkage keeps a thinly logged creative from passing
for the best one by luck (it pulls every creative towards its product's mean, more so the fewer its
impressions).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from caig.bandit.arena import Arena, BetaTS, draw_traffic, layout_arena, read_logged_events, run_policy
from caig.bandit.config import SimulateConfig
from caig.bandit.simulate import prior_arrays
from caig.errors import UserError

REPLAY_SHRINKAGE = 20.0  # pseudo-impressions of the product x segment CTR in each creative's replayed CTR


@dataclass
class LoggedArena:
    """The arena (``true_ctr`` = shrunk logged CTR) and the logged segment mix its traffic is drawn with."""

    arena: Arena
    segment_mix: list[float]


REPLAY_EVENT_COLUMNS = ("product_id", "creative_id", "segment", "clicked")


def logged_arena(
    data_dir: str | Path, products: Collection[str] | None = None, shrinkage: float = REPLAY_SHRINKAGE
) -> LoggedArena:
    """Lay out ``data_dir``'s creatives (of ``products`` only, if given) with their replayed CTR per segment."""
    data_dir = Path(data_dir)
    events = read_logged_events(data_dir, REPLAY_EVENT_COLUMNS)
    creatives = pd.read_parquet(data_dir / "creatives.parquet")
    return arena_from_logs(creatives, events, products, shrinkage)


def arena_from_logs(
    creatives: pd.DataFrame,
    events: pd.DataFrame,
    products: Collection[str] | None = None,
    shrinkage: float = REPLAY_SHRINKAGE,
) -> LoggedArena:
    """The replay arena from a creatives table and logged events (``REPLAY_EVENT_COLUMNS``)."""
    segments = sorted(events["segment"].unique())
    mix = events["segment"].value_counts(normalize=True).reindex(segments).to_numpy(float)
    if products is not None:
        creatives = creatives[creatives["product_id"].isin(set(products))]
        events = events[events["product_id"].isin(set(products))]
    if creatives.empty:
        raise UserError("none of the requested products has creatives in the creatives table")
    arm = events.groupby(["product_id", "creative_id", "segment"]).clicked.agg(["size", "sum"])
    by_arm = dict(zip(arm.index, zip(arm["size"], arm["sum"], strict=True), strict=True))
    ps = events.groupby(["product_id", "segment"]).clicked.agg(["size", "sum"])
    product_ctr = {
        key: (c + 1.0) / (n + 2.0) for key, n, c in zip(ps.index, ps["size"], ps["sum"], strict=True)
    }
    overall = (events["clicked"].sum() + 1.0) / (len(events) + 2.0)

    def replayed_ctr(pid: str, row) -> list[float]:
        out = []
        for segment in segments:
            n, c = by_arm.get((pid, row.creative_id, segment), (0, 0))
            base = product_ctr.get((pid, segment), overall)
            out.append((c + shrinkage * base) / (n + shrinkage))
        return out

    names = sorted(creatives["product_id"].unique())
    per_product = events.groupby("product_id").size().reindex(names, fill_value=0).to_numpy(float)
    arena = layout_arena(creatives, names, segments, replayed_ctr, per_product, "logged CTR")
    return LoggedArena(arena, mix.tolist())


def replay_regret(logged: LoggedArena, priors: pd.DataFrame | None, config: SimulateConfig) -> float:
    """Cumulative regret (against each context's best replayed CTR) of our TS with ``priors`` (None: Beta(1, 1))."""
    arena = logged.arena
    alpha, beta = prior_arrays(arena, priors)
    ctx, u = draw_traffic(arena, logged.segment_mix, config)
    policy = BetaTS(alpha, beta, len(arena.segments), config.seed)
    return float(run_policy(policy, arena, ctx, u, config, "log replay")["regret"].sum())
