"""Ingestion of the small world's logs and of injected bad rows and files: exact counts and reasons."""

import dataclasses
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from caig.cli import main
from caig.data.config import IngestConfig
from caig.data.events import EVENT_SCHEMA, read_events
from caig.data.ingest import ingest_events
from caig.data.quarantine import read_quarantine

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
CONFIG = IngestConfig(batch_rows=50_000, memory_limit="256MB", threads=1)


@pytest.fixture(scope="module")
def world_events(small_world_dir: Path) -> pd.DataFrame:
    return read_events(small_world_dir / "events")


@pytest.fixture(scope="module")
def creatives(small_world_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(small_world_dir / "creatives.parquet")


def _expected_stats(events: pd.DataFrame) -> pd.DataFrame:
    events = events.assign(date=events["ts"].dt.date)
    stats = events.groupby(["creative_id", "product_id", "date", "segment"], as_index=False).agg(
        impressions=("clicked", "size"), clicks=("clicked", "sum")
    )
    return stats.astype({"impressions": "int64", "clicks": "int64"}).reset_index(drop=True)


def _stats(ds: Path) -> pd.DataFrame:
    return (
        pd.read_parquet(ds / "creative_stats.parquet")
        .sort_values(["creative_id", "date", "segment"])
        .reset_index(drop=True)
    )


def _write(path: Path, rows: list[dict] | pa.Table, schema: pa.Schema = EVENT_SCHEMA) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path)
    return path


def test_world_logs_become_exact_daily_stats(small_world_dir, world_events, creatives, tmp_path):
    report = ingest_events(small_world_dir / "events", tmp_path / "ds", CONFIG, creatives, AS_OF)
    assert (report.rows_read, report.rows_valid, report.rows_duplicate, report.rows_quarantined) == (
        len(world_events),
        len(world_events),
        0,
        0,
    )
    assert len(report.files_read) == 7 and report.files_unreadable == []
    stats = _stats(tmp_path / "ds")
    assert list(stats.columns) == ["creative_id", "product_id", "date", "segment", "impressions", "clicks"]
    pd.testing.assert_frame_equal(stats, _expected_stats(world_events), check_dtype=False)
    saved = json.loads((tmp_path / "ds" / "ingest_report.json").read_text())
    assert saved["rows_read"] == saved["rows_valid"] + saved["rows_duplicate"] + saved["rows_quarantined"]
    assert saved["events_total"] == len(world_events) and saved["passed"] is True


def test_reingesting_same_and_overlapping_files_changes_nothing(small_world_dir, world_events, tmp_path):
    days = sorted((small_world_dir / "events").iterdir())
    first, second = tmp_path / "first", tmp_path / "second"
    for day in days[:4]:
        shutil.copytree(day, first / day.name)
    for day in days[2:]:  # days 3 and 4 in both
        shutil.copytree(day, second / day.name)
    ds = tmp_path / "ds"
    ingest_events(first, ds, CONFIG, as_of=AS_OF)
    report = ingest_events(second, ds, CONFIG, as_of=AS_OF)
    overlap = sum(len(pq.read_table(f)) for d in days[2:4] for f in d.glob("*.parquet"))
    assert report.rows_duplicate == report.duplicate_of_earlier_runs == overlap
    assert report.rows_valid == report.rows_read - overlap
    pd.testing.assert_frame_equal(_stats(ds), _expected_stats(world_events), check_dtype=False)
    before = (ds / "creative_stats.parquet").read_bytes()
    again = ingest_events(small_world_dir / "events", ds, CONFIG, as_of=AS_OF)
    assert (again.rows_valid, again.rows_duplicate, again.rows_read) == (
        0,
        len(world_events),
        len(world_events),
    )
    assert (ds / "creative_stats.parquet").read_bytes() == before


def test_duplicate_event_ids_within_a_run_count_once(world_events, tmp_path):
    sample = pa.Table.from_pandas(world_events.head(100), schema=EVENT_SCHEMA, preserve_index=False)
    _write(tmp_path / "ev" / "a.parquet", sample)
    _write(tmp_path / "ev" / "b.parquet", sample.slice(0, 30))  # 30 repeated event_ids
    report = ingest_events(tmp_path / "ev", tmp_path / "ds", CONFIG, as_of=AS_OF)
    assert (report.rows_read, report.rows_valid, report.rows_duplicate) == (130, 100, 30)
    assert report.duplicate_in_run == 30
    assert int(_stats(tmp_path / "ds")["impressions"].sum()) == 100


def _bad_rows(good: pd.DataFrame) -> list[dict]:
    """Real rows of the world, each broken in one way (the event_id tells which)."""
    rows = good.head(12).to_dict("records")
    other_product = next(r for r in good.to_dict("records") if r["product_id"] != rows[0]["product_id"])
    edits = [
        {"event_id": None},
        {"product_id": ""},
        {"creative_id": None},  # null ids
        {"segment": None},
        {"clicked": None},  # missing values
        {"ts": AS_OF + timedelta(days=1)},
        {"ts": AS_OF + timedelta(hours=2)},  # future
        {"creative_id": "C999999"},
        {"creative_id": "C999998"},  # unknown creatives
        {"creative_id": other_product["creative_id"]},  # creative of another product
    ]
    return [{**row, **edit} for row, edit in zip(rows, edits)]


def test_each_kind_of_bad_row_is_quarantined_with_its_reason(world_events, creatives, tmp_path):
    events = tmp_path / "ev"
    good = world_events.iloc[1000:1300]
    _write(events / "good.parquet", pa.Table.from_pandas(good, schema=EVENT_SCHEMA, preserve_index=False))
    _write(events / "bad.parquet", _bad_rows(world_events.iloc[2000:3000]))
    text = world_events.iloc[3000:3004].astype({"ts": str, "clicked": str}).reset_index(drop=True)
    text.loc[1, "ts"] = "not a time"
    text.loc[2, "clicked"] = "perhaps"
    _write(events / "text_types.parquet", pa.Table.from_pandas(text, preserve_index=False))
    typed = world_events.iloc[4000:4003].reset_index(drop=True).assign(creative_id=[7, 8, 9])
    _write(events / "int_creative.parquet", pa.Table.from_pandas(typed, preserve_index=False))
    report = ingest_events(events, tmp_path / "ds", CONFIG, creatives, AS_OF)
    assert report.rows_read == 300 + 10 + 4 + 3
    assert report.quarantine_reasons == {
        "wrong_type": 2 + 3,
        "null_id": 3,
        "missing_value": 2,
        "future_timestamp": 2,
        "unknown_creative": 2,
        "product_mismatch": 1,
    }
    assert (report.rows_quarantined, report.rows_valid, report.rows_duplicate) == (15, 302, 0)
    q = read_quarantine(tmp_path / "ds" / "quarantine").to_pandas().sort_values(["source_file", "row"])
    assert len(q) == 15 and sorted(report.quarantine_files) == sorted(
        p.name for p in (tmp_path / "ds" / "quarantine").glob("*.parquet")
    )
    bad = q[q.source_file == "bad.parquet"]
    assert bad["reason"].tolist() == ["null_id"] * 3 + ["missing_value"] * 2 + ["future_timestamp"] * 2 + [
        "unknown_creative"
    ] * 2 + ["product_mismatch"]
    assert bad["row"].tolist() == list(range(10))
    assert q[q.source_file == "text_types.parquet"]["row"].tolist() == [1, 2]
    assert q[q.source_file == "int_creative.parquet"]["detail"].unique().tolist() == [
        "creative_id is int64, expected string"
    ]
    assert int(_stats(tmp_path / "ds")["impressions"].sum()) == 302
    # Ingesting the same files again replaces the quarantine files instead of adding copies.
    ingest_events(events, tmp_path / "ds", CONFIG, creatives, AS_OF)
    assert len(read_quarantine(tmp_path / "ds" / "quarantine")) == 15


def _corrupt_second_row_group(path: Path) -> None:
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 2
    offset = meta.row_group(1).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def test_unreadable_files_are_reported_by_name_and_fail_the_run(world_events, tmp_path, capsys):
    events = tmp_path / "ev"
    table = pa.Table.from_pandas(world_events.head(2000), schema=EVENT_SCHEMA, preserve_index=False)
    _write(events / "ok.parquet", table.slice(0, 500))
    truncated = _write(events / "truncated.parquet", table.slice(500, 500))
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    (events / "not_parquet.parquet").write_text("event_id,ts\n1,2\n")
    corrupt = events / "corrupt_middle.parquet"
    pq.write_table(table.slice(1000, 1000), corrupt, row_group_size=500, compression="snappy")
    _corrupt_second_row_group(corrupt)
    (events / "_SUCCESS").write_text("")  # not a parquet file: ignored
    report = ingest_events(events, tmp_path / "ds", CONFIG, as_of=AS_OF)
    assert report.files_read == ["ok.parquet"]
    assert sorted(f["file"] for f in report.files_unreadable) == [
        "corrupt_middle.parquet",
        "not_parquet.parquet",
        "truncated.parquet",
    ]
    # The corrupt file's first row group was readable, but none of its rows count.
    assert (report.rows_read, report.rows_valid, report.events_total) == (500, 500, 500)
    assert not report.passed and "3 event file(s) could not be read" in report.failures()[0]
    allowed = dataclasses.replace(CONFIG, max_unreadable_files=3)
    assert ingest_events(events, tmp_path / "ds3", allowed, as_of=AS_OF).passed  # a chosen tolerance
    args = [
        "data",
        "ingest",
        "--events",
        str(events),
        "--out",
        str(tmp_path / "ds4"),
        "--as-of",
        "2026-11-01",
    ]
    with pytest.raises(SystemExit) as done:
        main(args)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert done.value.code == 2 and len(errors) == 1 and "max_unreadable_files=0" in errors[0]


def test_every_file_unreadable_is_not_a_pass(tmp_path):
    events = tmp_path / "ev"
    events.mkdir()
    (events / "a.parquet").write_text("not parquet")
    report = ingest_events(
        events, tmp_path / "ds", dataclasses.replace(CONFIG, max_unreadable_files=5), as_of=AS_OF
    )
    assert report.rows_read == 0 and not report.passed


def test_cli_exits_2_with_one_line_when_too_many_rows_are_quarantined(world_events, tmp_path, capsys):
    events = tmp_path / "ev"
    rows = world_events.head(20).to_dict("records")
    for row in rows[:3]:
        row["creative_id"] = None  # 3 of 20 = 15% > 10%
    _write(events / "a.parquet", rows)
    args = ["data", "ingest", "--events", str(events), "--out", str(tmp_path / "ds"), "--as-of", "2026-11-01"]
    with pytest.raises(SystemExit) as done:
        main([*args, "--set", "data.ingest.max_quarantine_share=0.1"])
    assert done.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "3 of 20 rows quarantined" in errors[0]
    assert "max_quarantine_share=0.1" in errors[0]
    main([*args, "--set", "data.ingest.max_quarantine_share=0.2"])  # under the threshold: exit 0
    assert json.loads(capsys.readouterr().out)["rows_quarantined"] == 3


def test_no_parquet_files_is_a_user_error(tmp_path, capsys):
    (tmp_path / "ev").mkdir()
    with pytest.raises(SystemExit) as done:
        main(["data", "ingest", "--events", str(tmp_path / "ev"), "--out", str(tmp_path / "ds")])
    assert done.value.code == 2
    assert "no *.parquet files found" in capsys.readouterr().err
