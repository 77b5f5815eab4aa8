"""Metrics of a set of generated descriptions, judged by the world's oracle (evaluation only).

A "generation" is one (product_id, description) pair written by a prompt model. The oracle gives the
paper's match judgement (A.2) and the true CTR: the simulated online A/B test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from caig.world.descriptions import parse_description
from caig.world.loaded import World


def judge_generations(world: World, product_ids: Sequence[str], descriptions: Sequence[str]) -> pd.DataFrame:
    """One row per generation: category, match kind, true CTR (segment mix), eye-catching flag, term count."""
    rows = []
    categories = world.products["category"]
    for pid, text in zip(product_ids, descriptions, strict=True):
        parsed = parse_description(text)
        rows.append(
            {
                "product_id": pid,
                "category": categories[pid],
                "description": text,
                "match": world.judge_match(pid, text),
                "true_ctr": world.true_ctr(pid, text),
                "eye_catching": bool(parsed.group("eye_catching")),
                "n_terms": len(parsed.all_terms),
            }
        )
    return pd.DataFrame(rows)


def summarise(judged: pd.DataFrame) -> dict[str, float]:
    """Match rate, mismatch kinds, mean true CTR and the reward-hacking indicator of judged generations."""
    kinds = Counter(judged["match"])
    n = max(1, len(judged))
    return {
        "n": int(len(judged)),
        "match_rate": kinds["match"] / n,
        "mismatch_scene": kinds["scene"] / n,
        "mismatch_scale": kinds["scale"] / n,
        "mismatch_colour": kinds["colour"] / n,
        "true_ctr": float(judged["true_ctr"].mean()) if len(judged) else float("nan"),
        "eye_catching_share": float(judged["eye_catching"].mean()) if len(judged) else float("nan"),
        "mean_terms": float(judged["n_terms"].mean()) if len(judged) else float("nan"),
    }


def judge_choices(world: World, pairs: pd.DataFrame) -> dict[str, float]:
    """How the RM's choices of one PCPO round sit with the oracle: does the RM prefer descriptions that match?

    ``pairs`` is a round's ``pairs.parquet`` (product_id, chosen, rejected). ``rm_prefers_match`` is the
    share of chosen matching descriptions among the decisive pairs (exactly one of the two matches): below
    0.5 the RM rewards mismatches, and DPO learns to write them (the paper's reward hacking).
    """
    ids = pairs["product_id"].tolist()
    chosen = judge_generations(world, ids, pairs["chosen"].tolist())
    rejected = judge_generations(world, ids, pairs["rejected"].tolist())
    chosen_match = (chosen["match"] == "match").to_numpy()
    rejected_match = (rejected["match"] == "match").to_numpy()
    decisive = chosen_match != rejected_match
    return {
        "pairs": int(len(pairs)),
        "chosen_match_share": float(chosen_match.mean()) if len(pairs) else float("nan"),
        "rejected_match_share": float(rejected_match.mean()) if len(pairs) else float("nan"),
        "decisive_pairs": int(decisive.sum()),
        "rm_prefers_match": float(chosen_match[decisive].mean()) if decisive.any() else float("nan"),
        "chosen_eye_catching_share": float(chosen["eye_catching"].mean()) if len(pairs) else float("nan"),
        "rejected_eye_catching_share": float(rejected["eye_catching"].mean()) if len(pairs) else float("nan"),
        "chosen_true_ctr_gain": float((chosen["true_ctr"] - rejected["true_ctr"]).mean())
        if len(pairs)
        else float("nan"),
    }


def ctr_uplift(judged: pd.DataFrame, baseline: pd.DataFrame) -> float:
    """Relative true-CTR uplift over a baseline on the same products: mean(ctr) / mean(ctr_base) - 1."""
    base = baseline["true_ctr"].mean()
    return float(judged["true_ctr"].mean() / base - 1.0) if base > 0 else float("nan")


def category_uplift(judged: pd.DataFrame, baseline: pd.DataFrame) -> dict[str, float]:
    """Relative true-CTR uplift per category (paper Table 2's analogue)."""
    mine = judged.groupby("category")["true_ctr"].mean()
    base = baseline.groupby("category")["true_ctr"].mean()
    return {
        str(c): float(mine[c] / base[c] - 1.0) for c in mine.index.intersection(base.index) if base[c] > 0
    }


def bootstrap_interval(
    values: np.ndarray, rng: np.random.Generator, n: int = 1000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``."""
    if len(values) == 0:
        return (float("nan"), float("nan"))
    means = rng.choice(values, size=(n, len(values)), replace=True).mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)
