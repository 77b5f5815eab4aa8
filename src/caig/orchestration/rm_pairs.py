"""The reward model's pairs: a loose rule for training, the strict rule for testing, no product on both sides.

The paper trains the RM on pairs of the TRAIN rule (``reward.train_pairs``: E = 50, D = 1%) and tests on the
TEST rule (``data.pairs``: E = 1000, D = 5%, upper 1.2). ``caig.data.training_pairs.build_pair_dataset``
applies one rule and splits by product; the held-out products of the two rules' splits need not be the
same. So both rules are applied, the test side is the strict rule's held-out products, and the training
side keeps the loose rule's pairs of every OTHER product (the pairs dropped for that are counted).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from caig.data.config import PairRuleConfig, SplitConfig
from caig.data.training_pairs import build_pair_dataset

log = logging.getLogger("caig.orchestration")


def build_rm_pairs(
    stats: pd.DataFrame,
    creatives: pd.DataFrame,
    image_root: Path,
    train_rule: PairRuleConfig,
    test_rule: PairRuleConfig,
    split: SplitConfig,
    out: Path,
) -> dict[str, Any]:
    """Write ``out/train.parquet`` and ``out/test.parquet`` (and each rule's own output in ``out/rules/``).

    Returns:
        ``pairs.json``: each rule's summary, the held-out products, and the counts of the final sides.
    """
    out = Path(out)
    strict = build_pair_dataset(stats, creatives, image_root, test_rule, split, out / "rules" / "test_rule")
    loose = build_pair_dataset(stats, creatives, image_root, train_rule, split, out / "rules" / "train_rule")
    held_out = set(strict["test_products"])
    loose_pairs = pd.concat(
        [pd.read_parquet(out / "rules" / "train_rule" / f"{side}.parquet") for side in ("train", "test")],
        ignore_index=True,
    )
    on_test_side = loose_pairs["product_id"].isin(held_out)
    train = loose_pairs[~on_test_side].reset_index(drop=True)
    test = pd.read_parquet(out / "rules" / "test_rule" / "test.parquet")
    train.to_parquet(out / "train.parquet", index=False)
    test.to_parquet(out / "test.parquet", index=False)
    summary = {
        "test_rule": strict,
        "train_rule": loose,
        "test_products": sorted(held_out),
        "train": {"pairs": len(train), "products": int(train["product_id"].nunique())},
        "test": {"pairs": len(test), "products": int(test["product_id"].nunique())},
        "train_pairs_dropped_held_out_product": int(on_test_side.sum()),
    }
    (out / "pairs.json").write_text(json.dumps(summary, indent=2))
    log.info(
        "RM pairs: %d train (train rule, %d of its pairs dropped: held-out products), %d test (test rule)",
        len(train),
        summary["train_pairs_dropped_held_out_product"],
        len(test),
    )
    return summary
