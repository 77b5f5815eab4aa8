"""How far to trust an automatic judge: its agreement with reference labels (the world's oracle).

Accuracy and Cohen's kappa over the A.2 kinds and over match / mismatch, confusion counts, the match rate
each rater gives, and the ROC AUC of the judge's match margin; kappa and AUC are scikit-learn's
(``cohen_kappa_score``, ``roc_auc_score``). Asking the judge is ``caig.evaluate.mllm_judge``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from caig.evaluate.review import ANSWERS

UNPARSED = "unparsed"  # a generated answer that names no A.2 kind


def agreement(
    judged: Sequence[str], oracle: Sequence[str], match_margin: Sequence[float] | None = None
) -> dict[str, Any]:
    """How the judge agrees with the oracle: accuracy and Cohen's kappa over the A.2 kinds and over
    match / mismatch, the confusion counts (oracle kind -> judge kind -> count) and the match rate each
    gives. ``unparsed`` judge answers count as disagreements. With ``match_margin`` (choice mode), also
    ``match_auc``: how well the margin ranks the oracle's matches above its mismatches (0.5 = chance)."""
    judged, oracle = list(judged), list(oracle)
    if len(judged) != len(oracle):
        raise ValueError(f"{len(judged)} judge answers for {len(oracle)} oracle labels")
    n = len(judged)
    kinds = [*ANSWERS, UNPARSED] if UNPARSED in judged else list(ANSWERS)
    confusion = {
        o: {j: sum(1 for a, b in zip(oracle, judged, strict=True) if a == o and b == j) for j in kinds}
        for o in ANSWERS
    }
    binary_j = ["match" if j == "match" else "mismatch" for j in judged]
    binary_o = ["match" if o == "match" else "mismatch" for o in oracle]
    return {
        "n": n,
        "accuracy": _accuracy(judged, oracle),
        "kappa": cohen_kappa(judged, oracle),
        "match_accuracy": _accuracy(binary_j, binary_o),
        "match_kappa": cohen_kappa(binary_j, binary_o),
        "match_rate_judge": judged.count("match") / n if n else None,
        "match_rate_oracle": oracle.count("match") / n if n else None,
        "unparsed": judged.count(UNPARSED),
        "match_auc": match_auc(match_margin, oracle) if match_margin is not None else None,
        "confusion": confusion,
    }


def match_auc(margin: Sequence[float], oracle: Sequence[str]) -> float | None:
    """ROC AUC of ``margin`` for the oracle's matches against its mismatches (ties count half); None without
    both classes or with a missing margin."""
    from sklearn.metrics import roc_auc_score  # imported here: scikit-learn is slow to import

    margin = np.asarray(margin, dtype=float)
    positive = np.array([o == "match" for o in oracle])
    if positive.all() or not positive.any() or np.isnan(margin).any():
        return None
    return float(roc_auc_score(positive, margin))


def _accuracy(a: Sequence[str], b: Sequence[str]) -> float | None:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a) if a else None


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels; None when chance agreement is 1 (one label used by both
    throughout, so agreement beyond chance is undefined) or there are no labels."""
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) < 2:
        return None
    kappa = cohen_kappa_score(list(a), list(b), replace_undefined_by=np.nan)
    return None if np.isnan(kappa) else float(kappa)
