"""``caig rm eval``: pair accuracy of a trained RM on test pairs, against the world's ceiling.

Writes ``rm_eval.json`` with ``pair_accuracy`` (both orders averaged), ``pair_accuracy_one_order`` (the
official protocol), ``swap_disagreement``, ``ceiling`` and ``skill = (pair_accuracy - 0.5) / (ceiling - 0.5)``,
and ``rm_scores.parquet`` with every pair's probabilities.

The ceiling is the accuracy of a judge that knows the true CTRs, on the SAME pairs (logged labels are noisy,
so even that judge misses some): ``caig.world.build.bayes_pair_accuracy``. It calls the world's ORACLE and is
computed here, in evaluation only; on imported real data (no ``world.json``) it is null.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from caig.reward.data import PairSource, load_pair_source
from caig.reward.metrics import pair_metrics, skill
from caig.reward.scoring import RewardScorer
from caig.world.marker import is_simulated

log = logging.getLogger("caig.reward")


def world_ceiling(data_dir: str | Path, pairs: pd.DataFrame) -> float | None:
    """ORACLE (evaluation only): the Bayes pair accuracy of ``pairs`` in the world at ``data_dir``."""
    if not is_simulated(data_dir):
        return None
    from caig.world.build import bayes_pair_accuracy
    from caig.world.loaded import load_world

    world = load_world(data_dir)
    return bayes_pair_accuracy(world, world.creatives, pairs)


def score_and_measure(
    scorer: RewardScorer, source: PairSource, ceiling: float | None
) -> tuple[dict, pd.DataFrame]:
    """Metrics and per-pair scores of ``scorer`` on ``source``, both orders."""
    p_left, p_swapped = scorer.score_source(source)
    labels_left = (source.pairs["label"] == "left").to_numpy()
    metrics: dict[str, Any] = pair_metrics(p_left, p_swapped, labels_left)
    metrics["ceiling"] = ceiling
    metrics["skill"] = skill(metrics["pair_accuracy"], ceiling)
    scores = source.pairs[
        ["product_id", "left_creative_id", "right_creative_id", "left_ctr", "right_ctr", "label"]
    ].copy()
    scores["p_left"] = p_left
    scores["p_left_swapped"] = p_swapped
    scores["p_left_both"] = (p_left + 1.0 - p_swapped) / 2
    scores["correct"] = (scores["p_left_both"] > 0.5).to_numpy() == labels_left
    return metrics, scores


def evaluate_rm(
    rm_dir: str | Path,
    pairs_path: str | Path,
    data_dir: str | Path,
    out: str | Path,
    scorer: RewardScorer | None = None,
) -> dict[str, Any]:
    """Evaluate the RM in ``rm_dir`` on the test pairs; write ``rm_eval.json`` and ``rm_scores.parquet``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scorer = scorer or RewardScorer.from_dir(rm_dir)
    source = load_pair_source(pairs_path, data_dir, split="test")
    metrics, scores = score_and_measure(scorer, source, world_ceiling(data_dir, source.pairs))
    metrics.update({"rm": str(rm_dir), "pairs_file": str(pairs_path), "data": str(data_dir)})
    metrics = {k: (round(v, 4) if isinstance(v, float) and np.isfinite(v) else v) for k, v in metrics.items()}
    (out / "rm_eval.json").write_text(json.dumps(metrics, indent=2))
    scores.to_parquet(out / "rm_scores.parquet", index=False)
    log.info(
        "RM eval: pair accuracy %.3f (one order %.3f), swap disagreement %.3f, skill %s",
        metrics["pair_accuracy"],
        metrics["pair_accuracy_one_order"],
        metrics["swap_disagreement"],
        metrics["skill"],
    )
    return metrics
