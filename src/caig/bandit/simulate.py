"""``caig bandit simulate``: cumulative regret of TS with RM-like priors, TS without priors, and MABWiser's TS.

A fourth policy, ``ts_product_prior``, gets the same priors flattened within each product (every creative at
the product's mean): the priors' knowledge of the product CTR without the RM's ranking of its creatives.

The world plays the users: its true CTR (the oracle) draws the clicks, which is allowed in a simulation and
nowhere in serving. Every policy faces the same traffic (products drawn like the logs' impressions, segments
by the world's mix) and the same click randomness (a click is ``u < true_ctr`` with one shared ``u`` per
impression), so their regrets differ only by their choices. Feedback arrives in batches, as in ad serving.

Until an RM exists, its priors are stood in for by empirical Bayes on a sample of the world's logs: each
creative's logged CTR shrunk towards its product's, worth ``prior_strength`` pseudo-impressions. An RM
priors table (``rm_priors.parquet``) can be passed instead.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from caig.bandit import ope
from caig.bandit.arena import (
    Arena,
    BetaTS,
    arena_best,
    draw_traffic,
    layout_arena,
    read_logged_events,
    run_policy,
)
from caig.bandit.config import SimulateConfig
from caig.errors import UserError

log = logging.getLogger("caig.bandit")


def build_arena(world, events: pd.DataFrame) -> Arena:
    """Lay the world's creatives out as arrays and ask the oracle for their true CTR per segment."""
    products = world.catalog.product_id.tolist()
    segments = world.segments
    return layout_arena(
        world.creatives,
        products,
        segments,
        lambda pid, row: [world.true_ctr(pid, row.description, s) for s in segments],
        events.groupby("product_id").size().reindex(products, fill_value=0).to_numpy(float),
        "oracle CTR",
    )


def empirical_priors(events: pd.DataFrame, config: SimulateConfig, rng: np.random.Generator) -> pd.DataFrame:
    """RM-like priors from a sample of the logs: shrunk logged CTR, ``prior_strength`` pseudo-impressions.

    Returns the ``rm_priors`` schema (creative_id, product_id, rm_score, prior_alpha, prior_beta,
    event_timestamp), so a real RM's table can replace it unchanged.
    """
    sample = events[rng.random(len(events)) < config.history_fraction]
    per = sample.groupby(["product_id", "creative_id"]).clicked.agg(["size", "sum"]).reset_index()
    prod = per.groupby("product_id")[["size", "sum"]].transform("sum")
    product_ctr = (prod["sum"] + 1.0) / (prod["size"] + 2.0)
    shrunk = (per["sum"] + config.shrinkage * product_ctr) / (per["size"] + config.shrinkage)
    return pd.DataFrame(
        {
            "creative_id": per.creative_id,
            "product_id": per.product_id,
            "rm_score": shrunk,
            "prior_alpha": config.prior_strength * shrunk,
            "prior_beta": config.prior_strength * (1.0 - shrunk),
            "event_timestamp": sample.ts.max() if len(sample) else pd.Timestamp.now(tz="UTC"),
        }
    )


def prior_arrays(arena: Arena, priors: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """(P, K) prior alpha and beta; Beta(1, 1) where a creative has no prior; padding arms can never win."""
    alpha = np.ones(arena.valid.shape)
    beta = np.ones(arena.valid.shape)
    if priors is not None:
        latest = priors.drop_duplicates("creative_id", keep="last").set_index("creative_id")
        for (p, j), cid in np.ndenumerate(arena.creative_ids):
            if cid in latest.index:
                alpha[p, j], beta[p, j] = latest.at[cid, "prior_alpha"], latest.at[cid, "prior_beta"]
    alpha[~arena.valid], beta[~arena.valid] = 1e-9, 1e9
    return alpha, beta


def product_level_priors(
    alpha: np.ndarray, beta: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The same priors with every creative of a product at the product's mean prior CTR (same strength):
    what is left of the priors without the RM's ranking, to show what that ranking adds."""
    strength = alpha + beta
    mean = np.where(valid, alpha / strength, 0.0).sum(axis=1, keepdims=True) / valid.sum(
        axis=1, keepdims=True
    )
    flat_alpha, flat_beta = strength * mean, strength * (1.0 - mean)
    flat_alpha[~valid], flat_beta[~valid] = alpha[~valid], beta[~valid]
    return flat_alpha, flat_beta


class MabwiserTS:
    """MABWiser's ``ThompsonSampling`` (Beta(1, 1) start), one MAB per (product, segment) context."""

    def __init__(self, arena: Arena, seed: int):
        from mabwiser.mab import MAB, LearningPolicy

        self.seed = seed
        self._mabs: dict[int, MAB] = {}
        self._new = lambda arms, s: MAB(arms=arms, learning_policy=LearningPolicy.ThompsonSampling(), seed=s)
        self.arms = [list(np.flatnonzero(v)) for v in arena.valid]
        self.n_segments = len(arena.segments)

    def _mab(self, c: int):
        if c not in self._mabs:
            mab = self._new(self.arms[c // self.n_segments], self.seed + c)
            mab.fit([], [])
            self._mabs[c] = mab
        return self._mabs[c]

    def choose(self, ctx: np.ndarray) -> np.ndarray:
        out = np.empty(len(ctx), dtype=int)
        for c in np.unique(ctx):
            where = np.flatnonzero(ctx == c)
            picks = self._mab(int(c)).predict(contexts=np.zeros((len(where), 1)))
            out[where] = picks if len(where) > 1 else [picks]
        return out

    def update(self, ctx: np.ndarray, arm: np.ndarray, clicked: np.ndarray) -> None:
        for c in np.unique(ctx):
            where = ctx == c
            self._mab(int(c)).partial_fit(list(arm[where]), clicked[where].astype(int).tolist())


def off_policy_check(arena: Arena, ctx: np.ndarray, logged: dict, prior_alpha: np.ndarray) -> dict:
    """IPS / SNIPS / DR estimates of two fixed policies from the no-prior TS logs, next to their true value."""
    n_seg = len(arena.segments)
    truth = np.repeat(arena.valid, n_seg, axis=0) * arena.true_ctr.transpose(0, 2, 1).reshape(
        len(arena.valid) * n_seg, -1
    )
    valid = np.repeat(arena.valid, n_seg, axis=0)[ctx]  # (N, K)
    prior_mean = np.repeat(prior_alpha, n_seg, axis=0)[ctx]
    targets = {
        "uniform": valid / valid.sum(axis=1, keepdims=True),
        "prior_greedy": np.eye(valid.shape[1])[np.where(valid, prior_mean, -1).argmax(axis=1)],
    }
    arm, reward, p = logged["arms"], logged["clicked"].astype(float), logged["propensity"]
    q = _reward_model(ctx, arm, reward, truth.shape)
    out = {}
    for name, probs in targets.items():
        rows = np.arange(len(ctx))
        estimates = {
            "ips": ope.ips(reward, p, probs[rows, arm]),
            "snips": ope.snips(reward, p, probs[rows, arm]),
            "dr": ope.doubly_robust(reward, p, probs, q[ctx], arm),
        }
        out[name] = {"true_value": float((probs * truth[ctx]).sum(axis=1).mean())}
        out[name].update({k: {"value": e.value, "stderr": e.stderr} for k, e in estimates.items()})
    return out


def _reward_model(ctx: np.ndarray, arm: np.ndarray, reward: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """q(x, a): logged CTR per (context, arm), shrunk towards the overall CTR (20 pseudo-impressions)."""
    n, c = np.zeros(shape), np.zeros(shape)
    np.add.at(n, (ctx, arm), 1.0)
    np.add.at(c, (ctx, arm), reward)
    overall = reward.mean()
    return (c + 20 * overall) / (n + 20)


def simulate(world_dir: Path, config: SimulateConfig, priors: pd.DataFrame | None = None) -> dict:
    """Run the three policies on the same traffic; return the summary and per-policy cumulative regret."""
    from caig.world.loaded import load_world

    world = load_world(world_dir)
    events = read_logged_events(world_dir)
    arena = build_arena(world, events)
    source = "rm_priors table" if priors is not None else "empirical Bayes on the logs"
    if priors is None:
        priors = empirical_priors(events, config, np.random.default_rng([config.seed, 3]))
    prior_alpha, prior_beta = prior_arrays(arena, priors)
    ctx, u = draw_traffic(arena, world.config.segment_mix, config)
    n_seg = len(arena.segments)
    policies = {
        "ts_rm_prior": BetaTS(prior_alpha, prior_beta, n_seg, config.seed),
        "ts_product_prior": BetaTS(
            *product_level_priors(prior_alpha, prior_beta, arena.valid), n_seg, config.seed
        ),
        "ts_no_prior": BetaTS(np.ones_like(prior_alpha), np.ones_like(prior_beta), n_seg, config.seed),
        "mabwiser_ts": MabwiserTS(arena, config.seed),
    }
    runs = {
        name: run_policy(p, arena, ctx, u, config, name, log_propensity=name == "ts_no_prior")
        for name, p in policies.items()
    }
    curves = {name: np.cumsum(r["regret"]) for name, r in runs.items()}
    final = {name: float(c[-1]) for name, c in curves.items()}
    prior_mean = prior_alpha / (prior_alpha + prior_beta)
    summary = {
        "world": str(world_dir),
        "n_impressions": config.n_impressions,
        "batch_size": config.batch_size,
        "n_contexts": len(arena.products) * n_seg,
        "n_creatives": int(arena.valid.sum()),
        "prior_source": source,
        "prior_strength": config.prior_strength,
        "cumulative_regret": final,
        "clicks": {name: int(r["clicked"].sum()) for name, r in runs.items()},
        "oracle_best_clicks_expected": float(arena_best(arena, ctx).sum()),
        "regret_ratio_rm_prior_vs_no_prior": final["ts_rm_prior"] / final["ts_no_prior"],
        "regret_ratio_mabwiser_vs_no_prior": final["mabwiser_ts"] / final["ts_no_prior"],
        "regret_ratio_product_prior_vs_no_prior": final["ts_product_prior"] / final["ts_no_prior"],
        "goal_regret_ratio": 0.7,
        "off_policy_evaluation_from_ts_no_prior_logs": off_policy_check(
            arena, ctx, runs["ts_no_prior"], prior_mean
        ),
    }
    summary["goal_met"] = summary["regret_ratio_rm_prior_vs_no_prior"] <= 0.7
    return {"summary": summary, "curves": curves}


def simulate_to(world_dir: Path, config: SimulateConfig, out: Path, priors_path: Path | None = None) -> dict:
    """``caig bandit simulate`` as one call: the priors table read from ``priors_path`` (empirical Bayes on the
    logs when None), the simulation run, ``out/simulate.json`` and ``out/regret.png`` written; the summary."""
    priors = None
    if priors_path is not None:
        if not priors_path.is_file():
            raise UserError(
                f"--priors {priors_path} does not exist; pass an rm_priors.parquet file or omit --priors"
            )
        priors = pd.read_parquet(priors_path)
    out.mkdir(parents=True, exist_ok=True)
    result = simulate(world_dir, config, priors)
    summary = result["summary"]
    (out / "simulate.json").write_text(json.dumps(summary, indent=2))
    ratio = summary["regret_ratio_rm_prior_vs_no_prior"]
    plot_regret(
        result["curves"],
        out / "regret.png",
        f"{summary['n_impressions']} impressions; TS with priors / without = {ratio:.2f}x",
    )
    return summary


def plot_regret(curves: dict[str, np.ndarray], path: Path, title: str) -> Path:
    """Cumulative regret per policy against impressions, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in curves.items():
        step = max(1, len(curve) // 500)
        ax.plot(np.arange(1, len(curve) + 1)[::step], curve[::step], label=name)
    ax.set_xlabel("impressions")
    ax.set_ylabel("cumulative regret (expected clicks lost)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
