"""Row checks of raw event batches: each kind of bad row gets its reason, exactly once."""

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa

from caig.data.event_checks import REASONS, CreativeIndex, check_batch
from caig.data.events import EVENT_SCHEMA

AS_OF = datetime(2026, 10, 10, tzinfo=UTC)
CREATIVES = CreativeIndex.from_frame(pd.DataFrame({"creative_id": ["C1", "C2"], "product_id": ["P1", "P2"]}))


def _rows(rows: list[dict]) -> pa.Table:
    base = {
        "event_id": "e",
        "ts": datetime(2026, 10, 5, tzinfo=UTC),
        "product_id": "P1",
        "creative_id": "C1",
        "segment": "young",
        "clicked": False,
    }
    return pa.Table.from_pylist([{**base, **row} for row in rows], schema=EVENT_SCHEMA)


def test_each_bad_row_gets_its_reason():
    table = _rows(
        [
            {"event_id": "ok1"},
            {"event_id": None},
            {"event_id": "n2", "product_id": "  "},
            {"event_id": "n3", "creative_id": None},
            {"event_id": "m1", "segment": None},
            {"event_id": "m2", "ts": None},
            {"event_id": "m3", "clicked": None},
            {"event_id": "f1", "ts": datetime(2026, 10, 11, tzinfo=UTC)},
            {"event_id": "ok2", "ts": datetime(2026, 10, 10, 0, 4, tzinfo=UTC)},  # within the 300 s tolerance
            {"event_id": "u1", "creative_id": "C9"},
            {"event_id": "p1", "creative_id": "C2"},  # C2 belongs to P2, the row says P1
            {"event_id": None, "creative_id": "C9"},  # two problems: the first reason in REASONS wins
        ]
    )
    checked = check_batch(table, AS_OF, 300, CREATIVES, row_offset=100)
    assert checked.valid["event_id"].to_pylist() == ["ok1", "ok2"]
    assert checked.valid["date"].to_pylist()[0].isoformat() == "2026-10-05"
    q = checked.quarantined.to_pandas()
    assert q["reason"].tolist() == ["null_id"] * 3 + ["missing_value"] * 3 + [
        "future_timestamp",
        "unknown_creative",
        "product_mismatch",
        "null_id",
    ]
    assert q["row"].tolist() == [101, 102, 103, 104, 105, 106, 107, 109, 110, 111]
    assert q.loc[1, "detail"] == "product_id is null or empty"
    assert checked.reason_counts == {
        "null_id": 4,
        "missing_value": 3,
        "future_timestamp": 1,
        "unknown_creative": 1,
        "product_mismatch": 1,
    }
    assert set(checked.reason_counts) <= set(REASONS)


def test_without_creatives_unknown_creatives_pass():
    checked = check_batch(_rows([{"creative_id": "C9"}]), AS_OF, 0, None)
    assert checked.valid.num_rows == 1 and checked.quarantined.num_rows == 0


def test_wrong_types_in_text_columns_are_quarantined_per_value():
    table = pa.table(
        {
            "event_id": ["a", "b", "c", "d", "e"],
            "ts": [
                "2026-10-05T10:00:00Z",
                "yesterday",
                "2026-10-05 11:00:00+02:00",
                "2026-10-05T10:00:00",
                None,
            ],
            "product_id": ["P1"] * 5,
            "creative_id": ["C1"] * 5,
            "segment": ["young"] * 5,
            "clicked": ["true", "1", "maybe", "0", "false"],
        }
    )
    checked = check_batch(table, AS_OF, 0, CREATIVES)
    assert checked.valid["event_id"].to_pylist() == ["a", "d"]
    assert checked.valid["clicked"].to_pylist() == [True, False]
    assert [t.isoformat() for t in checked.valid["ts"].to_pylist()] == ["2026-10-05T10:00:00+00:00"] * 2
    q = checked.quarantined.to_pandas()
    assert q[["event_id", "reason"]].values.tolist() == [
        ["b", "wrong_type"],
        ["c", "wrong_type"],
        ["e", "missing_value"],
    ]
    assert q.loc[0, "ts"] == "yesterday" and q.loc[1, "clicked"] == "maybe"


def test_a_wrongly_typed_or_missing_column_quarantines_every_row():
    table = pa.table(
        {
            "event_id": ["a", "b"],
            "ts": pa.array([datetime(2026, 10, 5), datetime(2026, 10, 6)], pa.timestamp("ns")),  # naive: UTC
            "product_id": ["P1", "P1"],
            "creative_id": pa.array([1, 2], pa.int64()),
            "clicked": pa.array([0, 1], pa.int8()),
        }
    )
    checked = check_batch(table, AS_OF, 0, None)
    assert checked.valid.num_rows == 0
    q = checked.quarantined.to_pandas()
    assert q["reason"].tolist() == ["wrong_type", "wrong_type"]
    assert q["detail"].tolist() == ["creative_id is int64, expected string"] * 2
    assert q["creative_id"].tolist() == ["1", "2"] and q["segment"].isna().all()
    fixed = table.set_column(3, "creative_id", pa.array(["C1", "C2"])).append_column(
        "segment", pa.array(["y"] * 2)
    )
    ok = check_batch(fixed, AS_OF, 0, None)
    assert ok.valid["clicked"].to_pylist() == [False, True]
    assert ok.valid["ts"].to_pylist()[1] == datetime(2026, 10, 6, tzinfo=UTC)
    no_segment = check_batch(fixed.drop(["segment"]), AS_OF, 0, None)
    assert no_segment.quarantined["detail"].to_pylist() == ["column segment is missing"] * 2


def test_clicked_text_is_true_false_1_0_only_as_at_the_serving_doors():
    """The words the feedback endpoints refuse are refused here too: "yes", "t", "no" are not guessed."""
    words = ["TRUE", " false ", "1", "0", "yes", "t", "no", "2"]
    table = pa.table(
        {
            "event_id": [f"e{i}" for i in range(len(words))],
            "ts": ["2026-10-05T10:00:00Z"] * len(words),
            "product_id": ["P1"] * len(words),
            "creative_id": ["C1"] * len(words),
            "segment": ["young"] * len(words),
            "clicked": words,
        }
    )
    checked = check_batch(table, AS_OF, 0, CREATIVES)
    assert checked.valid["clicked"].to_pylist() == [True, False, True, False]
    q = checked.quarantined.to_pandas()
    assert q["clicked"].tolist() == ["yes", "t", "no", "2"] and set(q["reason"]) == {"wrong_type"}
