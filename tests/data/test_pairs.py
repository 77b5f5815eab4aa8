"""The paper's RM pair rule on hand-made statistics: exact counts at each filter."""

import pandas as pd

from caig.data.config import PairRuleConfig
from caig.data.pairs import build_rm_pairs


def test_pair_rule_counts_and_labels():
    totals = pd.DataFrame({
        "creative_id": ["a", "b", "c", "d", "e", "f"],
        "product_id": ["P1", "P1", "P1", "P1", "P2", "P2"],
        "impressions": [2000, 2000, 2000, 500, 3000, 3000],
        "clicks": [100, 110, 140, 50, 0, 90],
    })
    pairs, counts = build_rm_pairs(totals, PairRuleConfig(min_impressions=1000, min_ratio_gap=0.05, max_ratio=1.2))
    # d has too few impressions, e has zero CTR; a/b ratio 1.10 kept, b/c 1.27 and a/c 1.40 out of window.
    assert counts == {"creatives": 6, "creatives_exposed": 5, "creatives_nonzero_ctr": 4, "candidate_pairs": 3,
                      "pairs_in_ratio_window": 1, "pairs": 1}
    row = pairs.iloc[0]
    assert {row.left_creative_id, row.right_creative_id} == {"a", "b"}
    winner = row.left_creative_id if row.label == "left" else row.right_creative_id
    assert winner == "b"


def test_left_right_is_randomised():
    n = 200
    totals = pd.DataFrame({
        "creative_id": [f"c{i}" for i in range(2 * n)],
        "product_id": [f"P{i // 2}" for i in range(2 * n)],
        "impressions": [5000] * (2 * n),
        "clicks": [100 if i % 2 == 0 else 110 for i in range(2 * n)],
    })
    pairs, _ = build_rm_pairs(totals, PairRuleConfig(min_impressions=1000), seed=1)
    share_left = (pairs.label == "left").mean()
    assert len(pairs) == n and 0.35 < share_left < 0.65


def test_exposure_must_exceed_the_threshold_not_reach_it():
    """E is "more than E impressions": a creative shown exactly E times is not exposed enough."""
    totals = pd.DataFrame({
        "creative_id": ["at", "above", "other"],
        "product_id": ["P1", "P1", "P1"],
        "impressions": [1000, 1001, 1001],
        "clicks": [50, 52, 55],
    })
    _, counts = build_rm_pairs(totals, PairRuleConfig(min_impressions=1000, min_ratio_gap=0.0, max_ratio=None))
    assert counts["creatives_exposed"] == 2 and counts["pairs"] == 1
