"""The Great Expectations suites of the data stage: accepted events, daily stats, and the ingest report.

Each function returns a list of expectations for one pandas frame; derived columns the expectations need
(``creative_ctr``, ``age_days``...) are added by ``frames_for_validation`` so that every check is a stock
GE expectation, shown as such in Data Docs.
"""

from __future__ import annotations

import logging
import math
import os
from datetime import datetime

import pandas as pd

from caig.data.config import ValidationConfig
from caig.data.tables import STATS_COLUMNS

# GE logs dozens of INFO lines while importing, and would phone home for analytics: neither is wanted.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
import great_expectations.expectations as gxe  # noqa: E402

EVENT_COLUMNS = ["event_id", "ts", "product_id", "creative_id", "segment", "clicked"]


def stats_frame(stats: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Stats plus derived columns: per-creative CTR and products, and the age of each row's date in days."""
    stats = stats.copy()
    by_creative = stats.groupby("creative_id")
    impressions = by_creative["impressions"].transform("sum")
    stats["creative_ctr"] = by_creative["clicks"].transform("sum") / impressions.where(impressions > 0)
    stats["products_per_creative"] = by_creative["product_id"].transform("nunique")
    dates = pd.to_datetime(stats["date"])
    stats["age_days"] = (pd.Timestamp(as_of.date()) - dates).dt.days
    return stats


def events_frame(events: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Sampled events plus ``seconds_before_as_of`` (negative means a timestamp after "now")."""
    events = events.copy()
    events["seconds_before_as_of"] = (
        pd.Timestamp(as_of) - pd.to_datetime(events["ts"], utc=True)
    ).dt.total_seconds()
    return events


def stats_suite(config: ValidationConfig, previous_rows: int | None) -> list:
    """Ids not null, positive impressions, clicks <= impressions, unique keys, plausible CTR, freshness, drift."""
    suite: list = [gxe.ExpectColumnToExist(column=c) for c in STATS_COLUMNS]
    suite += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in STATS_COLUMNS]
    suite += [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="impressions", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="clicks", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="impressions", column_B="clicks", or_equal=True),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["creative_id", "date", "segment"]),
        gxe.ExpectColumnValuesToBeBetween(column="products_per_creative", min_value=1, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="creative_ctr", min_value=0, max_value=config.max_ctr),
        gxe.ExpectColumnValuesToBeBetween(column="age_days", min_value=0),  # no day after "now"
    ]
    if config.freshness_max_age_days is not None:
        suite.append(
            gxe.ExpectColumnMinToBeBetween(column="age_days", max_value=config.freshness_max_age_days)
        )
    if previous_rows is not None:
        low = math.floor(previous_rows * (1 - config.max_row_count_drift))
        high = math.ceil(previous_rows * (1 + config.max_row_count_drift))
        suite.append(gxe.ExpectTableRowCountToBeBetween(min_value=max(low, 0), max_value=high))
    return suite


def events_suite(future_tolerance_s: int) -> list:
    """Accepted events (a sample): no null field, unique ids, boolean clicks, no timestamp after "now"."""
    suite: list = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in EVENT_COLUMNS]
    suite += [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        gxe.ExpectColumnValuesToBeInSet(column="clicked", value_set=[True, False]),
        gxe.ExpectColumnValuesToBeBetween(column="seconds_before_as_of", min_value=-future_tolerance_s),
    ]
    return suite


def ingest_suite(max_quarantine_share: float, max_unreadable_files: int = 0) -> list:
    """The ingest report (one row): every row accounted for, quarantined share and unreadable files under
    their thresholds."""
    return [
        gxe.ExpectColumnPairValuesToBeEqual(column_A="rows_read", column_B="rows_accounted"),
        gxe.ExpectColumnValuesToBeBetween(
            column="quarantined_share", min_value=0, max_value=max_quarantine_share
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="files_unreadable", min_value=0, max_value=max_unreadable_files
        ),
    ]


def ingest_frame(report: dict) -> pd.DataFrame:
    accounted = report["rows_valid"] + report["rows_duplicate"] + report["rows_quarantined"]
    return pd.DataFrame(
        [
            {
                "rows_read": report["rows_read"],
                "rows_accounted": accounted,
                "quarantined_share": report["quarantined_share"],
                "files_unreadable": len(report["files_unreadable"]),
            }
        ]
    )
