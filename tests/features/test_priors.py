"""The RM priors table: schema, writer and the errors for each kind of bad row."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from caig.errors import UserError
from caig.features.priors import RM_PRIOR_SCHEMA, empty_rm_priors, read_rm_priors, write_rm_priors


def _priors(**changes) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "creative_id": ["C1", "C2"],
            "product_id": ["P1", "P1"],
            "rm_score": [0.8, 0.3],
            "prior_alpha": [9.0, 4.0],
            "prior_beta": [3.0, 8.0],
            "event_timestamp": pd.to_datetime(["2026-10-20T00:00:00Z", "2026-10-20T00:00:00Z"]),
        }
    )
    for column, values in changes.items():
        frame[column] = values
    return frame


def test_round_trip_keeps_the_schema(tmp_path):
    path = write_rm_priors(_priors(), tmp_path / "deep" / "rm_priors.parquet")
    assert pq.read_schema(path).remove_metadata() == RM_PRIOR_SCHEMA
    back = read_rm_priors(path)
    assert list(back["rm_score"]) == [0.8, 0.3] and str(back["event_timestamp"].dt.tz) == "UTC"
    assert list(empty_rm_priors().columns) == RM_PRIOR_SCHEMA.names


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rm_score": [1.2, 0.3]}, "1 row.*rm_score outside"),
        ({"prior_beta": [0.0, -1.0]}, "2 row.*prior_alpha or prior_beta"),
        ({"creative_id": ["C1", None]}, "1 row.*null"),
        ({"creative_id": ["C1", "C1"]}, "1 row.*duplicate"),
        ({"event_timestamp": pd.to_datetime(["2026-10-20", "2026-10-21"])}, "timezone-aware"),
    ],
)
def test_bad_rows_are_refused_with_their_count(tmp_path, changes, message):
    with pytest.raises(UserError, match=message):
        write_rm_priors(_priors(**changes), tmp_path / "rm_priors.parquet")
    assert not (tmp_path / "rm_priors.parquet").exists()


def test_a_missing_column_is_named(tmp_path):
    with pytest.raises(UserError, match="prior_alpha"):
        write_rm_priors(_priors().drop(columns="prior_alpha"), tmp_path / "rm_priors.parquet")
