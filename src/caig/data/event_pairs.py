"""RM pairs straight from a world's (or imported) event logs, with a chosen pair rule.

``caig data pairs`` is the pipeline's way to make pairs (ingested, validated daily statistics, summed by
``caig.data.pairs.creative_totals``). This module starts from the logged events instead: it counts each
creative's impressions and clicks in a data directory's ``events/`` and applies
``caig.data.pairs.build_rm_pairs``, so that the RM's experiments and tests can compare the looser TRAINING
rule (``reward.train_pairs``, paper: E = 50, D = 1%) and the TEST rule (``data.pairs``, E = 1000, D = 5%,
upper 1.2) on the same logs; the RM priors read the same per-creative counts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from caig.data.config import PairRuleConfig
from caig.data.pairs import build_rm_pairs
from caig.errors import UserError


def creative_totals_from_events(data_dir: str | Path) -> pd.DataFrame:
    """Impressions and clicks per creative from ``data_dir/events`` (parquet, any partitioning)."""
    events_dir = Path(data_dir) / "events"
    if not events_dir.is_dir():
        raise UserError(f"{data_dir} holds no events/ directory; build a world or import logs first")
    table = ds.dataset(events_dir, format="parquet").to_table(
        columns=["creative_id", "product_id", "clicked"]
    )
    return creative_totals_of_events(table.to_pandas())


def creative_totals_of_events(events: pd.DataFrame) -> pd.DataFrame:
    """Impressions and clicks per creative (``creative_id, product_id, impressions, clicks``) of logged events."""
    return events.groupby(["creative_id", "product_id"], as_index=False, sort=True).agg(
        impressions=("clicked", "size"), clicks=("clicked", "sum")
    )


def pairs_from_events(data_dir: str | Path, rule: PairRuleConfig, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Pairs (``caig.data.pairs.PAIR_COLUMNS``) and per-filter counts, for the logs of ``data_dir``."""
    return build_rm_pairs(creative_totals_from_events(data_dir), rule, seed=seed)
