"""Point-in-time historical retrieval (rm_training_v1): no feature value from after an entity's time leaks."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from caig.errors import UserError
from caig.features.config import FeaturesConfig
from caig.features.historical import training_features
from caig.features.store import apply, open_store, store_dir


@pytest.fixture(scope="module")
def store(handmade_run, stats_table):
    # C1: CTR 0.1 on 10-01, 0.5 on 10-02 (the data ends on 10-02); C3 only on 10-02.
    stats = stats_table(
        [
            ("C1", "P1", "2026-10-01", "young", 100, 10),
            ("C1", "P1", "2026-10-02", "young", 100, 50),
            ("C3", "P2", "2026-10-02", "senior", 40, 4),
        ]
    )
    run = handmade_run(stats)
    config = FeaturesConfig()
    apply(config, run)
    return open_store(config, store_dir(config, run))


def _entities(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["creative_id", "product_id", "event_timestamp"])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame


def test_values_from_after_the_entity_time_never_leak(store):
    entities = _entities(
        [
            ("C1", "P1", "2026-10-02T12:00:00"),  # day 10-02 not complete: only day 10-01's window is known
            ("C1", "P1", "2026-10-02T23:59:59"),
            ("C1", "P1", "2026-10-03T00:00:00"),  # day 10-02 just completed
            ("C1", "P1", "2026-10-01T12:00:00"),  # before any complete day
        ]
    )
    got = training_features(store, entities)
    assert list(got["event_timestamp"]) == list(entities["event_timestamp"])  # input order kept
    assert list(got["ctr_1d"][:3]) == [0.1, 0.1, 0.5]
    assert list(got["impressions_7d"][:3]) == [100, 100, 200]
    assert got["ctr_7d"][2] == pytest.approx(0.3)
    assert pd.isna(got["ctr_1d"][3]) and pd.isna(got["impressions_7d"][3])
    assert list(got["title"]) == ["red mug"] * 4  # the catalog snapshot starts with the logs


def test_rows_older_than_the_ttl_are_not_joined(store):
    # The last stats row of C1 is stamped 10-03 00:00; the view's ttl is two days.
    got = training_features(
        store, _entities([("C1", "P1", "2026-10-04T23:00:00"), ("C1", "P1", "2026-10-05T01:00:00")])
    )
    assert got["ctr_1d"][0] == 0.5
    assert math.isnan(got["ctr_1d"][1])


def test_each_creative_gets_its_own_history(store):
    got = training_features(
        store, _entities([("C3", "P2", "2026-10-03T06:00:00"), ("C2", "P1", "2026-10-03T06:00:00")])
    )
    assert (got["impressions_1d"][0], got["ctr_1d"][0], got["category"][0], got["price"][0]) == (
        40,
        0.1,
        "lamp",
        40.0,
    )
    assert pd.isna(got["impressions_1d"][1]) and got["title"][1] == "red mug"  # C2 has no stats at all


def test_two_creatives_of_one_product_at_one_time_both_come_back(store):
    rows = [
        ("C1", "P1", "2026-10-03T00:00:00"),
        ("C2", "P1", "2026-10-03T00:00:00"),
        ("C1", "P1", "2026-10-03T00:00:00"),
    ]
    got = training_features(store, _entities(rows))
    assert list(got["creative_id"]) == ["C1", "C2", "C1"]
    assert got["ctr_1d"][0] == 0.5 and pd.isna(got["ctr_1d"][1]) and got["ctr_1d"][2] == 0.5
    assert list(got["title"]) == ["red mug"] * 3


def test_entity_rows_need_ids_and_aware_timestamps(store):
    with pytest.raises(UserError, match="product_id"):
        training_features(store, _entities([("C1", "P1", "2026-10-03")]).drop(columns="product_id"))
    naive = _entities([("C1", "P1", "2026-10-03")]).assign(event_timestamp=pd.Timestamp("2026-10-03"))
    with pytest.raises(UserError, match="timezone-aware"):
        training_features(store, naive)
