"""Creative fatigue: products whose recent CTR fell below their running mean, read from the logs.

Ads wear out: the same creatives shown for weeks earn fewer clicks. A product is fatigued when its CTR over
the last ``fatigue_days`` days of the logs is below its CTR over the days before by more than
``fatigue_margin`` (a share: 0.2 is 20% below), with at least ``fatigue_min_impressions`` recent impressions
so that noise on a quiet product does not trigger new creatives. Logged clicks only, never an oracle.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from caig.errors import UserError


def daily_product_stats(data_dir: Path) -> pd.DataFrame:
    """``product_id, day, impressions, clicks`` from the data directory's events (duplicate ids once)."""
    import duckdb

    files = sorted(str(f) for f in (Path(data_dir) / "events").rglob("*.parquet"))
    if not files:
        raise UserError(f"{data_dir}/events holds no parquet files; the fatigue trigger reads the click logs")
    query = (
        "SELECT product_id, CAST(ts AS DATE) AS day, COUNT(*)::BIGINT AS impressions, "
        "SUM(CAST(clicked AS INT))::BIGINT AS clicks FROM "
        "(SELECT DISTINCT event_id, product_id, ts, clicked FROM read_parquet(?)) GROUP BY 1, 2 ORDER BY 1, 2"
    )
    return duckdb.connect().execute(query, [files]).df()


def fatigued_products(daily: pd.DataFrame, days: int, margin: float, min_impressions: int) -> pd.DataFrame:
    """Per product: ``recent_ctr``, ``running_ctr`` (the days before the window) and ``fatigued``."""
    if daily.empty:
        return pd.DataFrame(columns=["product_id", "recent_ctr", "running_ctr", "fatigued"])
    day = pd.to_datetime(daily["day"])
    recent = day > day.max() - pd.Timedelta(days=days)
    totals = (
        daily.assign(window=recent.map({True: "recent", False: "running"}))
        .pivot_table(index="product_id", columns="window", values=["impressions", "clicks"], aggfunc="sum")
        .fillna(0)
    )
    out = pd.DataFrame(index=totals.index)
    for window in ("recent", "running"):
        shown = totals.get(("impressions", window), pd.Series(0, index=totals.index))
        clicked = totals.get(("clicks", window), pd.Series(0, index=totals.index))
        out[f"{window}_impressions"] = shown
        out[f"{window}_ctr"] = clicked / shown.where(shown > 0)
    out["fatigued"] = (
        (out["recent_impressions"] >= max(min_impressions, 1))
        & (out["running_impressions"] > 0)
        & (out["recent_ctr"] < out["running_ctr"] * (1.0 - margin))
    )
    return out.reset_index()
