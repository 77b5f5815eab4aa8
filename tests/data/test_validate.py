"""Great Expectations validation of ingested stats: a passing run with Data Docs, and failing cases."""

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from caig.cli import main
from caig.data.config import IngestConfig, ValidationConfig
from caig.data.ingest import ingest_events
from caig.data.validate import validate_stats

AS_OF = datetime(2026, 10, 8, 12, tzinfo=UTC)  # the small world's logs end on 2026-10-07
INGEST = IngestConfig(memory_limit="256MB", threads=1)


@pytest.fixture(scope="module")
def stats_dir(small_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = tmp_path_factory.mktemp("validate") / "ds"
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet")
    ingest_events(small_world_dir / "events", ds, INGEST, creatives, AS_OF)
    return ds


def _failed(summary: dict) -> list[tuple[str, str]]:
    return [(f["suite"], f["expectation"]) for f in summary["failed_expectations"]]


def test_ingested_world_passes_and_data_docs_are_rendered(stats_dir, tmp_path):
    report = tmp_path / "report"
    summary = validate_stats(stats_dir, report, ValidationConfig(freshness_max_age_days=2), INGEST, AS_OF)
    assert summary["success"] is True and summary["failed_expectations"] == []
    assert set(summary["suites"]) == {"stats", "events", "ingest"}
    assert summary["suites"]["stats"]["evaluated"] >= 20 and summary["suites"]["events"]["rows"] == 200_000
    saved = json.loads((report / "validation.json").read_text())
    assert saved["success"] is True and saved["stats_rows"] == summary["stats_rows"] > 0
    index = (report / "index.html").read_text()
    assert "caig_stats" in index and "caig_events" in index
    pages = list((report / "validations").rglob("*.html"))
    assert len(pages) == 3
    page = next(p for p in pages if "caig_stats" in str(p)).read_text()
    assert "expect_column_pair_values_a_to_be_greater_than_b" in page or "greater than" in page.lower()


def test_bad_stats_fail_with_the_failed_expectations_named(stats_dir, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    stats = pd.read_parquet(stats_dir / "creative_stats.parquet")
    stats.loc[0, "clicks"] = stats.loc[0, "impressions"] + 1  # more clicks than impressions
    stats.loc[1, "creative_id"] = None
    stats.to_parquet(bad / "creative_stats.parquet", index=False)
    report = tmp_path / "report"
    # Freshness: 10 days after the last day of logs is too old for a 2-day limit.
    late = datetime(2026, 10, 17, tzinfo=UTC)
    summary = validate_stats(bad, report, ValidationConfig(freshness_max_age_days=2), INGEST, late)
    assert summary["success"] is False
    assert set(_failed(summary)) == {
        ("stats", "expect_column_pair_values_a_to_be_greater_than_b"),
        ("stats", "expect_column_values_to_not_be_null"),
        ("stats", "expect_column_min_to_be_between"),
    }
    pair = next(
        f for f in summary["failed_expectations"] if f["expectation"].startswith("expect_column_pair")
    )
    assert pair["result"]["unexpected_count"] == 1
    assert summary["skipped"][0].startswith("row-count drift") and "events suite" in summary["skipped"][1]
    assert json.loads((report / "validation.json").read_text())["success"] is False
    assert (report / "index.html").is_file()


def test_row_count_drift_against_the_previous_run_and_cli_exit_code(stats_dir, tmp_path, capsys):
    report = tmp_path / "report"
    args = ["data", "validate", "--out", str(report), "--as-of", AS_OF.isoformat()]
    main([*args, "--stats", str(stats_dir)])  # passes: becomes the baseline
    capsys.readouterr()
    shrunk = tmp_path / "shrunk"
    shutil.copytree(stats_dir, shrunk)
    stats = pd.read_parquet(stats_dir / "creative_stats.parquet")
    stats.head(len(stats) // 4).to_parquet(shrunk / "creative_stats.parquet", index=False)
    with pytest.raises(SystemExit) as done:
        main([*args, "--stats", str(shrunk), "--set", "data.validation.max_row_count_drift=0.5"])
    assert done.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "expect_table_row_count_to_be_between" in errors[0]
    saved = json.loads((report / "validation.json").read_text())
    assert saved["previous_stats_rows"] == len(stats) and saved["stats_rows"] == len(stats) // 4
    assert saved["baseline_stats_rows"] == len(stats)  # a failed run does not become the baseline


def test_an_implausible_creative_ctr_fails_the_stats_suite(stats_dir, tmp_path):
    """A creative whose clicks are 80% of its impressions (display ads: a few percent) breaks max_ctr."""
    bad = tmp_path / "bad"
    bad.mkdir()
    stats = pd.read_parquet(stats_dir / "creative_stats.parquet")
    creative = stats.loc[0, "creative_id"]
    mine = stats["creative_id"] == creative
    stats.loc[mine, "clicks"] = (stats.loc[mine, "impressions"] * 0.8).astype(stats["clicks"].dtype)
    stats.to_parquet(bad / "creative_stats.parquet", index=False)
    summary = validate_stats(bad, tmp_path / "report", ValidationConfig(max_ctr=0.5), INGEST, AS_OF)
    assert summary["success"] is False
    failed = [
        f for f in summary["failed_expectations"] if f["expectation"] == "expect_column_values_to_be_between"
    ]
    assert [f["result"]["unexpected_count"] for f in failed] == [int(mine.sum())]


def test_cli_takes_relative_paths(stats_dir, tmp_path, monkeypatch, capsys):
    """As the README shows it: `caig data validate --stats DS --out REL` from the working directory."""
    shutil.copytree(stats_dir, tmp_path / "ds")
    monkeypatch.chdir(tmp_path)
    main(["data", "validate", "--stats", "ds", "--out", "rep", "--as-of", AS_OF.isoformat()])
    assert json.loads(capsys.readouterr().out)["success"] is True
    assert (tmp_path / "rep" / "index.html").is_file()
