"""How well an RM ranks pairs: pair accuracy in both orders (paper Eq. 13) and skill over chance.

Pure functions on arrays of probabilities, shared by ``caig rm eval`` (``caig.reward.evaluate``), the Table 1
ablation and the benchmarks that score an RM between curriculum stages.
"""

from __future__ import annotations

import numpy as np


def pair_metrics(p_left: np.ndarray, p_left_swapped: np.ndarray, labels_left: np.ndarray) -> dict[str, float]:
    """Pair accuracy (Eq. 13) in both orders averaged, in the given order only, and the swap disagreement.

    Args:
        p_left: P(left is better) with the pair in its stored order.
        p_left_swapped: P(left is better) with the two images swapped (the stored left is now on the right).
        labels_left: True where the stored left image has the higher logged CTR.
    """
    p_one = np.asarray(p_left, dtype=float)
    p_other = 1.0 - np.asarray(p_left_swapped, dtype=float)  # P(stored left better), from the swapped order
    labels = np.asarray(labels_left, dtype=bool)
    p_both = (p_one + p_other) / 2
    return {
        "pair_accuracy": float(np.mean((p_both > 0.5) == labels)),
        "pair_accuracy_one_order": float(np.mean((p_one > 0.5) == labels)),
        "swap_disagreement": float(np.mean((p_one > 0.5) != (p_other > 0.5))),
        "pairs": int(len(labels)),
    }


def skill(pair_accuracy: float, ceiling: float | None) -> float | None:
    """Share of the attainable gain over chance: ``(accuracy - 0.5) / (ceiling - 0.5)``."""
    if ceiling is None or ceiling <= 0.5:
        return None
    return (pair_accuracy - 0.5) / (ceiling - 0.5)
