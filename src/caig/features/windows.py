"""CTR statistics per creative over trailing 1, 7 and 28-day windows, from daily per-segment stats.

Input is the ingestion output (``creative_id, product_id, date, segment, impressions, clicks``). Each output
row describes a creative as of the END of one UTC day D: its ``event_timestamp`` is D + 1 day 00:00 UTC, the
first moment the whole day is known, so a point-in-time join never sees a day before it is complete. Days
without traffic count as zero impressions; rows run from a creative's first day to the last day in the data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from caig.errors import UserError

WINDOWS_DAYS = (1, 7, 28)
STATS_COLUMNS = ("creative_id", "product_id", "date", "segment", "impressions", "clicks")


def window_columns(windows: tuple[int, ...] = WINDOWS_DAYS) -> list[str]:
    """Feature names, in the order of the feature view: impressions_1d, clicks_1d, ctr_1d, ..."""
    return [f"{kind}_{days}d" for days in windows for kind in ("impressions", "clicks", "ctr")]


def window_stats(stats: pd.DataFrame, windows: tuple[int, ...] = WINDOWS_DAYS) -> pd.DataFrame:
    """Trailing-window impressions, clicks and CTR per creative and day (summed over segments).

    Returns ``creative_id, product_id, event_timestamp`` and :func:`window_columns`; ``ctr_Nd`` is
    clicks / impressions over the window, NaN (null in parquet) when the window has no impressions.
    """
    daily = _daily_totals(check_stats(stats))
    if daily.empty:
        return pd.DataFrame(
            columns=["creative_id", "product_id", "event_timestamp", *window_columns(windows)]
        )
    days = pd.date_range(daily["day"].min(), daily["day"].max(), freq="D")
    impressions = _dense(daily, "impressions", days)
    clicks = _dense(daily, "clicks", days)
    first_day = daily.groupby("creative_id")["day"].min().reindex(impressions.index)
    active = days.to_numpy()[None, :] >= first_day.to_numpy()[:, None]  # (creatives, days)
    columns = {}
    for n in windows:
        imp_n, clk_n = _trailing_sum(impressions.to_numpy(), n), _trailing_sum(clicks.to_numpy(), n)
        columns[f"impressions_{n}d"] = imp_n[active]
        columns[f"clicks_{n}d"] = clk_n[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[f"ctr_{n}d"] = np.where(imp_n > 0, clk_n / np.maximum(imp_n, 1), np.nan)[active]
    rows, cols = np.nonzero(active)
    product_of = daily.drop_duplicates("creative_id").set_index("creative_id")["product_id"]
    creative_ids = impressions.index.to_numpy()[rows]
    out = pd.DataFrame(
        {
            "creative_id": creative_ids,
            "product_id": product_of.reindex(creative_ids).to_numpy(),
            "event_timestamp": (days[cols] + pd.Timedelta(days=1)).tz_localize("UTC"),
            **columns,
        }
    )
    return out.astype({c: "int64" for c in out.columns if c.startswith(("impressions_", "clicks_"))})


def check_stats(stats: pd.DataFrame) -> pd.DataFrame:
    """Fail with the offending count if the stats table breaks its contract; nothing is dropped."""
    missing = [c for c in STATS_COLUMNS if c not in stats.columns]
    if missing:
        raise UserError(
            f"creative stats lack column(s) {', '.join(missing)}; expected {', '.join(STATS_COLUMNS)} "
            "(the output of `caig data ingest`)"
        )
    problems = {
        "null ids or date": stats[["creative_id", "product_id", "date"]].isna().any(axis=1),
        "negative impressions or clicks": (stats["impressions"] < 0) | (stats["clicks"] < 0),
        "clicks > impressions": stats["clicks"] > stats["impressions"],
    }
    for reason, bad in problems.items():
        if bad.any():
            raise UserError(f"creative stats: {int(bad.sum())} row(s) with {reason}; fix or re-run ingestion")
    products = stats.groupby("creative_id")["product_id"].nunique()
    if (products > 1).any():
        raise UserError(
            f"creative stats: {int((products > 1).sum())} creative(s) listed under more than one product "
            f"(e.g. {products[products > 1].index[0]}); a creative belongs to one product"
        )
    return stats


def _daily_totals(stats: pd.DataFrame) -> pd.DataFrame:
    day = pd.to_datetime(stats["date"], utc=True).dt.floor("D").dt.tz_localize(None)
    frame = stats.assign(day=day)
    grouped = frame.groupby(["creative_id", "product_id", "day"], as_index=False)[["impressions", "clicks"]]
    return grouped.sum()


def _dense(daily: pd.DataFrame, column: str, days: pd.DatetimeIndex) -> pd.DataFrame:
    """A (creative x day) matrix of one count, zero on days without traffic."""
    table = daily.pivot_table(index="creative_id", columns="day", values=column, aggfunc="sum", fill_value=0)
    return table.reindex(columns=days, fill_value=0).astype("int64")


def _trailing_sum(matrix: np.ndarray, n: int) -> np.ndarray:
    """Sum of the last ``n`` columns up to and including each column (rows are creatives)."""
    cumulative = np.cumsum(matrix, axis=1)
    shifted = np.zeros_like(cumulative)
    shifted[:, n:] = cumulative[:, :-n]
    return cumulative - shifted
