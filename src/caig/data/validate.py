"""``validate_stats``: run the Great Expectations suites on a stats directory and render Data Docs.

An ephemeral GE context (no project directory) validates three frames: the daily stats, a bounded
sample of the accepted events, and the ingest report. Data Docs go to ``REPORT/index.html``, a summary with
the failed expectations to ``REPORT/validation.json``. The function returns the summary; the caller (the
CLI or a KFP step) decides what a failure means (``caig data validate`` exits non-zero).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from caig.data import expectations
from caig.data.config import IngestConfig, ValidationConfig
from caig.data.event_store import STATE_FILE, sample_events
from caig.data.report import read_report
from caig.data.tables import read_stats
from caig.errors import UserError

log = logging.getLogger("caig.data")

VALIDATION_FILE = "validation.json"
SITE = "caig"


def validate_stats(
    stats_dir: Path,
    out_dir: Path,
    config: ValidationConfig,
    ingest: IngestConfig,
    as_of: datetime,
    previous: Path | None = None,
) -> dict[str, Any]:
    """Validate ``stats_dir`` (written by ingestion or an importer); write Data Docs and validation.json.

    Args:
        stats_dir: holds creative_stats.parquet, and when ingested from events also the accepted events
            and ingest_report.json (their suites are skipped, and listed as skipped, when absent).
        out_dir: REPORT: index.html (Data Docs) and validation.json.
        config: thresholds (drift, freshness, CTR, event sample size).
        ingest: the ingest thresholds (quarantined share, clock-skew tolerance).
        as_of: "now" for freshness and future checks.
        previous: the previous run's validation.json for the row-count drift check; by default
            ``out_dir/validation.json`` if it exists. Its baseline is the last run that passed.
    """
    stats_dir, out_dir = Path(stats_dir), Path(out_dir)
    if previous is not None and not Path(previous).is_file():
        raise UserError(
            f"--previous {previous}: no such file; pass an earlier run's validation.json or leave it out"
        )
    previous = previous or out_dir / VALIDATION_FILE
    previous_rows = _previous_rows(previous)
    stats = read_stats(stats_dir)
    frames, skipped = _suites_to_run(stats_dir, stats, config, ingest, as_of, previous_rows)
    suites = _run_suites(frames, out_dir)
    summary = {
        "success": all(s["success"] for s in suites.values()),
        "as_of": as_of.isoformat(),
        "stats_dir": str(stats_dir),
        "stats_rows": int(len(stats)),
        "previous_stats_rows": previous_rows,
        "baseline_stats_rows": None,
        "suites": suites,
        "failed_expectations": [f for s in suites.values() for f in s["failed"]],
        "skipped": skipped,
        "data_docs": "index.html",
    }
    # The next run's drift baseline: this run if it passed, else the baseline this run was checked against.
    summary["baseline_stats_rows"] = summary["stats_rows"] if summary["success"] else previous_rows
    (out_dir / VALIDATION_FILE).write_text(json.dumps(summary, indent=2, default=str))
    log.info(
        "validation %s: %d suites, %d failed expectations; Data Docs at %s",
        "passed" if summary["success"] else "FAILED",
        len(suites),
        len(summary["failed_expectations"]),
        out_dir / "index.html",
    )
    return summary


def _suites_to_run(
    stats_dir: Path,
    stats: pd.DataFrame,
    config: ValidationConfig,
    ingest: IngestConfig,
    as_of: datetime,
    previous_rows: int | None,
) -> tuple[dict[str, tuple[pd.DataFrame, list]], list[str]]:
    """The suites this ``stats_dir`` can be checked by, each with the frame it checks (stats always; the
    events and the ingest report when ingestion wrote them), and why the others are skipped."""
    frames: dict[str, tuple[pd.DataFrame, list]] = {
        "stats": (expectations.stats_frame(stats, as_of), expectations.stats_suite(config, previous_rows)),
    }
    skipped = [] if previous_rows is not None else ["row-count drift: no previous validation.json"]
    if config.freshness_max_age_days is None:
        skipped.append("freshness: data.validation.freshness_max_age_days is null")
    if (stats_dir / STATE_FILE).is_file():
        events = sample_events(stats_dir, config.events_sample_rows).to_pandas()
        frames["events"] = (
            expectations.events_frame(events, as_of),
            expectations.events_suite(ingest.future_tolerance_s),
        )
    else:
        skipped.append(f"events suite: no {STATE_FILE} in {stats_dir} (stats not ingested from events)")
    report = read_report(stats_dir)
    if report is not None:
        frames["ingest"] = (
            expectations.ingest_frame(report),
            expectations.ingest_suite(ingest.max_quarantine_share, ingest.max_unreadable_files),
        )
    else:
        skipped.append("ingest suite: no ingest_report.json")
    return frames, skipped


def _previous_rows(path: Path) -> int | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return int(data["baseline_stats_rows"] if "baseline_stats_rows" in data else data["stats_rows"])
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring %s as the previous run: it has no row count", path)
        return None


def _context(out_dir: Path):
    """An ephemeral GE context whose Data Docs site is ``out_dir``; analytics and progress bars off."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out_dir)},
    }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={SITE: site},
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _run_suites(frames: dict[str, tuple[pd.DataFrame, list]], out_dir: Path) -> dict[str, dict]:
    """Validate each frame against its suite in one checkpoint run; build Data Docs; summarise results."""
    import great_expectations as gx

    out_dir.mkdir(parents=True, exist_ok=True)
    context = _context(out_dir)
    source = context.data_sources.add_pandas("caig")
    definitions = []
    for name, (_, suite_items) in frames.items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add(gx.ExpectationSuite(name=f"caig_{name}", expectations=suite_items))
        definitions.append(
            context.validation_definitions.add(
                gx.ValidationDefinition(name=f"caig_{name}", data=batch, suite=suite)
            )
        )
    summary = {}
    for definition, (name, (frame, _)) in zip(definitions, frames.items()):
        result = definition.run(batch_parameters={"dataframe": frame})
        summary[name] = _summarise(name, result, len(frame))
    context.build_data_docs(site_names=[SITE])
    return summary


def _summarise(name: str, result: Any, rows: int) -> dict[str, Any]:
    failed = []
    for item in result.results:
        if item.success:
            continue
        observed = {
            k: item.result.get(k)
            for k in ("observed_value", "unexpected_count", "unexpected_percent", "partial_unexpected_list")
            if k in item.result
        }
        kwargs = {k: v for k, v in item.expectation_config.kwargs.items() if k != "batch_id"}
        failed.append(
            {
                "suite": name,
                "expectation": item.expectation_config.type,
                "kwargs": kwargs,
                "result": json.loads(json.dumps(observed, default=str)),
            }
        )
    return {"success": bool(result.success), "rows": rows, "evaluated": len(result.results), "failed": failed}
