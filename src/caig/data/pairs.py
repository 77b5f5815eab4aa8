"""Reward-model pairs from click statistics, by the paper's rule (section 3.3; REFERENCE.md).

Keep creatives with more than E impressions and a non-zero CTR; pair creatives of the same product whose
CTR ratio hi/lo lies in [1 + D, upper]; randomise which one is shown on the left. Both CTRs are kept for
the RM's regression head.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from caig.data.config import PairRuleConfig

PAIR_COLUMNS = ["pair_id", "product_id", "left_creative_id", "right_creative_id", "left_ctr", "right_ctr",
                "left_impressions", "right_impressions", "label"]


def creative_totals(stats: pd.DataFrame) -> pd.DataFrame:
    """Sum impressions and clicks per creative over dates and segments."""
    totals = stats.groupby(["creative_id", "product_id"], as_index=False, sort=True)[["impressions", "clicks"]].sum()
    return totals


def build_rm_pairs(totals: pd.DataFrame, rule: PairRuleConfig, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Pairs of creatives of the same product per the pair rule, and the counts left after each filter.

    Args:
        totals: one row per creative with ``creative_id, product_id, impressions, clicks``.
        rule: E, D, upper and the per-product cap.
        seed: seeds the left/right coin flips and the per-product sampling.

    Returns:
        (pairs with ``PAIR_COLUMNS``, counts: creatives, creatives_exposed, creatives_nonzero_ctr,
        candidate_pairs, pairs_in_ratio_window, pairs).
    """
    rng = np.random.default_rng(seed)
    counts = {"creatives": int(len(totals))}
    exposed = totals[totals["impressions"] > rule.min_impressions]
    counts["creatives_exposed"] = int(len(exposed))
    kept = exposed[exposed["clicks"] > 0].assign(ctr=lambda t: t["clicks"] / t["impressions"])
    counts["creatives_nonzero_ctr"] = int(len(kept))
    cols = ["creative_id", "product_id", "ctr", "impressions"]
    joined = kept[cols].merge(kept[cols], on="product_id", suffixes=("_a", "_b"))
    joined = joined[joined["creative_id_a"] < joined["creative_id_b"]]
    counts["candidate_pairs"] = int(len(joined))
    hi = np.maximum(joined["ctr_a"], joined["ctr_b"])
    lo = np.minimum(joined["ctr_a"], joined["ctr_b"])
    ratio = hi / lo
    in_window = ratio >= 1 + rule.min_ratio_gap
    if rule.max_ratio is not None:
        in_window &= ratio <= rule.max_ratio
    joined = joined[in_window.to_numpy()].sort_values(["product_id", "creative_id_a", "creative_id_b"])
    counts["pairs_in_ratio_window"] = int(len(joined))
    joined = joined.assign(_r=rng.random(len(joined))).sort_values(["product_id", "_r"])
    joined = joined.groupby("product_id", sort=True).head(rule.max_pairs_per_product)
    pairs = _orient(joined.reset_index(drop=True), rng)
    counts["pairs"] = int(len(pairs))
    return pairs, counts


def _orient(joined: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Put a random one of each pair on the left; the label names the side with the higher logged CTR."""
    swap = rng.random(len(joined)) < 0.5
    a, b = joined, joined
    left = np.where(swap, b["creative_id_b"], a["creative_id_a"])
    right = np.where(swap, a["creative_id_a"], b["creative_id_b"])
    left_ctr = np.where(swap, b["ctr_b"], a["ctr_a"])
    right_ctr = np.where(swap, a["ctr_a"], b["ctr_b"])
    left_imp = np.where(swap, b["impressions_b"], a["impressions_a"])
    right_imp = np.where(swap, a["impressions_a"], b["impressions_b"])
    pairs = pd.DataFrame({
        "product_id": joined["product_id"].to_numpy(),
        "left_creative_id": left, "right_creative_id": right,
        "left_ctr": left_ctr.astype(float), "right_ctr": right_ctr.astype(float),
        "left_impressions": left_imp.astype(np.int64), "right_impressions": right_imp.astype(np.int64),
    })
    pairs["label"] = np.where(pairs["left_ctr"] > pairs["right_ctr"], "left", "right")
    pairs.insert(0, "pair_id", [f"pair-{i:06d}" for i in range(len(pairs))])
    return pairs[PAIR_COLUMNS]
