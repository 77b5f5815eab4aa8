"""The simulated world's impression/click logs, drawn from the oracle's CTR; written in the log format of
``caig.data.events`` (the contract real logs follow too)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from caig.world.config import WorldConfig


def allocate_impressions(config: WorldConfig, creatives: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Impressions per creative: popular products and favoured creatives get more (log-normal weights)."""
    products = creatives["product_id"].to_numpy()
    _, product_index = np.unique(products, return_inverse=True)
    popularity = rng.lognormal(0.0, config.impression_skew, product_index.max() + 1)[product_index]
    share = rng.lognormal(0.0, config.impression_skew * 0.5, len(creatives))
    weights = popularity * share
    return rng.multinomial(config.n_events, weights / weights.sum())


def simulate_events(config: WorldConfig, creatives: pd.DataFrame, ctr: np.ndarray,
                    rng: np.random.Generator, seed: int) -> pd.DataFrame:
    """One row per impression; a click is drawn from the oracle's CTR for the creative and the segment.

    Args:
        ctr: click probability per creative (rows, in ``creatives`` order) and segment (columns).
    """
    impressions = allocate_impressions(config, creatives, rng)
    creative_index = np.repeat(np.arange(len(creatives)), impressions)
    segment_index = rng.choice(len(config.segments), size=len(creative_index), p=config.segment_mix)
    clicked = rng.random(len(creative_index)) < ctr[creative_index, segment_index]
    start = pd.Timestamp(config.start_date, tz="UTC")
    offsets = rng.integers(0, config.n_days * 86_400_000_000, len(creative_index))  # microseconds
    order = np.argsort(offsets, kind="stable")
    ts = start + pd.to_timedelta(offsets[order], unit="us")
    n = len(order)
    return pd.DataFrame({
        "event_id": pd.array(_event_ids(seed, n).to_pandas(), dtype=object),
        "ts": ts,
        "product_id": creatives["product_id"].to_numpy()[creative_index[order]],
        "creative_id": creatives["creative_id"].to_numpy()[creative_index[order]],
        "segment": np.asarray(config.segments, dtype=object)[segment_index[order]],
        "clicked": clicked[order],
    })


def _event_ids(seed: int, n: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(n)), pa.string()), 9, "0")
    return pc.binary_join_element_wise(f"ev-{seed}-", digits, "")
