"""Trailing 1/7/28-day CTR windows on a hand-made stats table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from caig.errors import UserError
from caig.features.windows import window_columns, window_stats


def _row(windows: pd.DataFrame, creative: str, day_end: str) -> pd.Series:
    stamp = pd.Timestamp(day_end, tz="UTC")
    match = windows[(windows.creative_id == creative) & (windows.event_timestamp == stamp)]
    assert len(match) == 1, f"no single row for {creative} at {day_end}"
    return match.iloc[0]


@pytest.fixture
def windows(stats_table) -> pd.DataFrame:
    # C1: traffic on 10-01 (two segments), 10-05 and 10-30; C2 starts on 10-29.
    rows = [
        ("C1", "P1", "2026-10-01", "young", 60, 6),
        ("C1", "P1", "2026-10-01", "senior", 40, 4),
        ("C1", "P1", "2026-10-05", "young", 100, 30),
        ("C1", "P1", "2026-10-30", "young", 50, 5),
        ("C2", "P1", "2026-10-29", "family", 20, 1),
    ]
    return window_stats(stats_table(rows))


def test_one_row_per_creative_and_day_from_its_first_day_to_the_last_day(windows):
    counts = windows.groupby("creative_id").size()
    assert counts["C1"] == 30  # 10-01 .. 10-30
    assert counts["C2"] == 2  # 10-29 .. 10-30
    assert list(windows.columns) == ["creative_id", "product_id", "event_timestamp", *window_columns()]
    assert str(windows["event_timestamp"].dt.tz) == "UTC"


def test_segments_are_summed_and_stamped_at_the_end_of_the_day(windows):
    first = _row(windows, "C1", "2026-10-02")  # the row of day 10-01
    assert (first.impressions_1d, first.clicks_1d, first.ctr_1d) == (100, 10, 0.1)
    assert (first.impressions_28d, first.clicks_28d) == (100, 10)


def test_windows_sum_the_trailing_days(windows):
    day5 = _row(windows, "C1", "2026-10-06")
    assert (day5.impressions_1d, day5.clicks_1d) == (100, 30)
    assert (day5.impressions_7d, day5.clicks_7d, day5.ctr_7d) == (200, 40, 0.2)
    day7 = _row(windows, "C1", "2026-10-08")  # 10-01 is the 7th day back from 10-07: still inside
    assert (day7.impressions_7d, day7.impressions_1d) == (200, 0)
    day8 = _row(windows, "C1", "2026-10-09")  # 10-01 has left the 7-day window
    assert (day8.impressions_7d, day8.clicks_7d, day8.ctr_7d) == (100, 30, 0.3)
    assert (day8.impressions_28d, day8.clicks_28d) == (200, 40)


def test_the_28_day_window_drops_days_older_than_28(windows):
    day28 = _row(windows, "C1", "2026-10-29")  # 10-28: window 10-01 .. 10-28
    assert day28.impressions_28d == 200
    day29 = _row(windows, "C1", "2026-10-30")  # 10-29: window 10-02 .. 10-29, 10-01 is out
    assert (day29.impressions_28d, day29.clicks_28d, day29.ctr_28d) == (100, 30, 0.3)
    day30 = _row(windows, "C1", "2026-10-31")
    assert (day30.impressions_1d, day30.impressions_7d, day30.impressions_28d) == (50, 50, 150)
    assert day30.clicks_28d == 35


def test_ctr_is_missing_not_zero_without_impressions(windows):
    quiet = _row(windows, "C1", "2026-10-15")  # 10-14: nothing in the last 7 days
    assert quiet.impressions_1d == 0 and math.isnan(quiet.ctr_1d) and math.isnan(quiet.ctr_7d)
    assert quiet.ctr_28d == pytest.approx(40 / 200)
    c2 = _row(windows, "C2", "2026-10-30")
    assert (c2.product_id, c2.impressions_7d, c2.ctr_7d) == ("P1", 20, 0.05)


def test_bad_stats_fail_with_the_count(stats_table):
    bad = stats_table([("C1", "P1", "2026-10-01", "young", 5, 6), ("C1", "P1", "2026-10-02", "young", 5, 7)])
    with pytest.raises(UserError, match="2 row"):
        window_stats(bad)
    two_products = stats_table(
        [("C1", "P1", "2026-10-01", "young", 5, 1), ("C1", "P2", "2026-10-02", "young", 5, 1)]
    )
    with pytest.raises(UserError, match="more than one product"):
        window_stats(two_products)
    with pytest.raises(UserError, match="lack column"):
        window_stats(two_products.drop(columns=["clicks"]))
