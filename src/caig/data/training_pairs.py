"""Reward-model training data: pairs by the paper's rule, with image paths, split by product.

``build_pair_dataset`` sums the daily stats per creative (``pairs.creative_totals``), applies the pair rule
(``pairs.build_rm_pairs``), joins each side's image from the creatives table, splits by product
(``split.held_out_products``) and writes ``train.parquet``, ``test.parquet`` and ``pairs.json`` with the
counts after each filter and per split. A pair is dropped only for a counted reason.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from caig.data.config import PairRuleConfig, SplitConfig
from caig.data.pairs import PAIR_COLUMNS, build_rm_pairs, creative_totals
from caig.data.split import held_out_products
from caig.typed_config import as_dict

log = logging.getLogger("caig.data")

PAIR_DATASET_COLUMNS = [*PAIR_COLUMNS, "left_image_path", "right_image_path"]


def resolve_image_paths(creatives: pd.DataFrame, root: Path) -> pd.Series:
    """Image paths by creative_id; relative paths are taken relative to ``root`` (the creatives file's
    folder), URIs (``scheme://``) are kept as they are."""

    def resolve(path: str) -> str:
        if "://" in path or Path(path).is_absolute():
            return path
        return str((root / path).resolve())

    return creatives.set_index("creative_id")["image_path"].astype(str).map(resolve)


def _local_missing(paths: pd.Series) -> pd.Series:
    return paths.map(lambda p: "://" not in p and not Path(p).is_file())


def attach_images(pairs: pd.DataFrame, images: pd.Series, counts: dict[str, int]) -> pd.DataFrame:
    """Add left/right image paths; drop (and count) pairs with a creative missing from the table or a
    local image file that does not exist."""
    out = pairs.assign(
        left_image_path=pairs["left_creative_id"].map(images),
        right_image_path=pairs["right_creative_id"].map(images),
    )
    no_row = out["left_image_path"].isna() | out["right_image_path"].isna()
    counts["pairs_dropped_creative_not_in_table"] = int(no_row.sum())
    out = out[~no_row]
    missing = _local_missing(out["left_image_path"]) | _local_missing(out["right_image_path"])
    counts["pairs_dropped_image_file_missing"] = int(missing.sum())
    out = out[~missing].reset_index(drop=True)
    counts["pairs_with_images"] = int(len(out))
    return out[PAIR_DATASET_COLUMNS]


def build_pair_dataset(
    stats: pd.DataFrame,
    creatives: pd.DataFrame,
    image_root: Path,
    rule: PairRuleConfig,
    split: SplitConfig,
    out_dir: Path,
) -> dict[str, Any]:
    """Write ``train.parquet``, ``test.parquet`` and ``pairs.json`` to ``out_dir``; return pairs.json."""
    pairs, counts = build_rm_pairs(creative_totals(stats), rule, seed=split.seed)
    pairs = attach_images(pairs, resolve_image_paths(creatives, image_root), counts)
    held_out = held_out_products(pairs["product_id"], split.test_share, split.seed)
    is_test = pairs["product_id"].isin(held_out)
    sides = {"train": pairs[~is_test].reset_index(drop=True), "test": pairs[is_test].reset_index(drop=True)}
    overlap = set(sides["train"]["product_id"]) & set(sides["test"]["product_id"])
    if overlap:  # cannot happen: the split is by product
        raise AssertionError(f"products in both splits: {sorted(overlap)[:5]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in sides.items():
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
    summary = {
        "rule": as_dict(rule),
        "split": as_dict(split),
        "counts": counts,
        "splits": {
            name: {
                "pairs": int(len(f)),
                "products": int(f["product_id"].nunique()),
                "label_left_share": round(float((f["label"] == "left").mean()), 4) if len(f) else None,
            }
            for name, f in sides.items()
        },
        "test_products": sorted(held_out),
    }
    (out_dir / "pairs.json").write_text(json.dumps(summary, indent=2))
    log.info(
        "pairs: %d train (%d products), %d test (%d products)",
        len(sides["train"]),
        summary["splits"]["train"]["products"],
        len(sides["test"]),
        summary["splits"]["test"]["products"],
    )
    return summary
