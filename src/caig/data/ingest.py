"""Ingestion: raw impression/click logs (parquet, the event schema) -> per-creative daily CTR statistics.

``ingest_events(events_dir, out_dir, config)`` reads every ``*.parquet`` file under ``events_dir`` in record
batches (memory bounded by ``batch_rows``), checks each row (``event_checks``), stages valid rows in the
directory's DuckDB store, quarantines the others with a reason, and then adds each new ``event_id`` once
(``event_store``). It writes ``DS/creative_stats.parquet`` (all events ever accepted, aggregated by
creative, product, date and segment) and ``DS/ingest_report.json``. A file that cannot be read to the end
is reported by name and none of its rows count; the run goes on with the other files.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from caig.data.config import IngestConfig
from caig.data.event_checks import CreativeIndex, check_batch
from caig.data.event_store import EventStore
from caig.data.quarantine import QuarantineWriter
from caig.data.report import IngestReport
from caig.errors import UserError

log = logging.getLogger("caig.data")

STATS_FILE = "creative_stats.parquet"
QUARANTINE_DIR = "quarantine"


def ingest_events(
    events_dir: Path,
    out_dir: Path,
    config: IngestConfig,
    creatives: pd.DataFrame | None = None,
    as_of: datetime | None = None,
) -> IngestReport:
    """Ingest every parquet file under ``events_dir`` into the stats directory ``out_dir``.

    Args:
        events_dir: a folder of parquet files (any depth), e.g. a world's ``events/``.
        out_dir: the stats directory (DS); created if needed, and re-used by later runs.
        config: batch size, DuckDB memory limit and threads, quarantine threshold, clock-skew tolerance.
        creatives: the creatives table (``creative_id, product_id``); events of other creatives, or whose
            product differs, are quarantined. None skips these two checks.
        as_of: "now" for the future-timestamp check; the current time by default.

    Returns:
        The run's report (also written to ``out_dir/ingest_report.json``); ``report.passed`` is False when
        the quarantined share exceeds ``config.max_quarantine_share`` or more than
        ``config.max_unreadable_files`` files could not be read.
    """
    started = time.perf_counter()
    events_dir, out_dir = Path(events_dir), Path(out_dir)
    files = list_event_files(events_dir)
    as_of = as_of or datetime.now(UTC)
    if as_of.tzinfo is None:
        raise UserError("as_of must be timezone-aware, e.g. 2026-10-15T00:00:00+00:00")
    index = CreativeIndex.from_frame(creatives) if creatives is not None else None
    report = IngestReport(
        as_of=as_of.isoformat(),
        max_quarantine_share=config.max_quarantine_share,
        creatives_checked=index is not None,
        max_unreadable_files=config.max_unreadable_files,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    with EventStore(out_dir, config.memory_limit, config.threads) as store:
        for path in tqdm(files, desc="ingest", unit="file", leave=False):
            _ingest_file(path, events_dir, out_dir, store, report, config, as_of, index)
        counts = store.merge()
        report.rows_valid = counts["new"]
        report.rows_duplicate = counts["duplicate_of_earlier_runs"] + counts["duplicate_in_run"]
        report.duplicate_of_earlier_runs = counts["duplicate_of_earlier_runs"]
        report.duplicate_in_run = counts["duplicate_in_run"]
        report.stats_rows = store.write_stats(out_dir / STATS_FILE)
        for key, value in store.totals().items():
            setattr(report, key, value)
    report.elapsed_s = round(time.perf_counter() - started, 3)
    report.events_per_s = round(report.rows_read / report.elapsed_s, 1) if report.elapsed_s else 0.0
    report.check()
    report.write(out_dir)
    log.info(
        "ingested %d rows from %d files: %d new, %d duplicate, %d quarantined (%.2f%%), %d unreadable files",
        report.rows_read,
        len(report.files_read),
        report.rows_valid,
        report.rows_duplicate,
        report.rows_quarantined,
        100 * report.quarantined_share,
        len(report.files_unreadable),
    )
    return report


def list_event_files(events_dir: Path) -> list[Path]:
    """Every ``*.parquet`` file under ``events_dir``, sorted; a user error when there is none."""
    if not events_dir.is_dir():
        raise UserError(
            f"--events {events_dir}: not a directory; pass the folder that holds the parquet logs"
        )
    files = sorted(p for p in events_dir.rglob("*.parquet") if p.is_file())
    if not files:
        raise UserError(f"--events {events_dir}: no *.parquet files found; pass the folder of the event logs")
    return files


class _UnreadableFile(Exception):
    """A parquet file could not be opened or read to its end."""


def _ingest_file(
    path: Path,
    events_dir: Path,
    out_dir: Path,
    store: EventStore,
    report: IngestReport,
    config: IngestConfig,
    as_of: datetime,
    index: CreativeIndex | None,
) -> None:
    """Read one file batch by batch; on a read error undo its rows and report it as unreadable."""
    name = path.relative_to(events_dir).as_posix()
    reasons: Counter[str] = Counter()  # applied to the report only once the whole file was read
    rows = 0
    try:
        quarantine = QuarantineWriter(out_dir / QUARANTINE_DIR, path, name)  # hashes the file: may fail
    except OSError as err:
        _report_unreadable(report, name, err)
        return
    store.begin_file()
    try:
        for batch in _read_batches(path, config.batch_rows):
            result = check_batch(batch, as_of, config.future_tolerance_s, index, row_offset=rows)
            rows += batch.num_rows
            store.stage(result.valid)
            quarantine.write(result.quarantined)
            reasons.update(result.reason_counts)
    except _UnreadableFile as err:
        store.rollback_file()
        quarantine.abort()
        _report_unreadable(report, name, err.__cause__ or err)
        return
    except BaseException:
        store.rollback_file()
        quarantine.abort()
        raise
    store.commit_file()
    written = quarantine.commit()
    report.files_read.append(name)
    report.rows_read += rows
    report.add_reasons(dict(reasons))
    if written is not None:
        report.quarantine_files.append(written.name)


def _read_batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Record batches of a parquet file; any read failure (truncated, corrupt, not parquet) is unreadable."""
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            yield batch
    except (OSError, pa.ArrowException) as err:
        raise _UnreadableFile(str(err)) from err


def _report_unreadable(report: IngestReport, name: str, err: BaseException) -> None:
    message = f"{type(err).__name__}: {err}".splitlines()[0][:300]
    report.files_unreadable.append({"file": name, "error": message})
    log.warning("unreadable file %s (%s); skipped, the run goes on", name, message)
