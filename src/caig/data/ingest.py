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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from caig.data.config import IngestConfig
from caig.data.event_checks import CreativeIndex, check_batch
from caig.data.event_sql import SEQ_BITS, event_rows_sql, seq_of, sql_layout
from caig.data.event_store import EventStore
from caig.data.quarantine import QuarantineWriter
from caig.data.report import IngestReport
from caig.errors import UserError

log = logging.getLogger("caig.data")

STATS_FILE = "creative_stats.parquet"
QUARANTINE_DIR = "quarantine"
GLOB_CHARS = "*?[{"  # in a path given to read_parquet, these make a pattern that may match other files


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
        run = _Run(events_dir, out_dir, store, config, as_of, index)
        for file in run.ingest(files):
            file.report_to(report)
        _merge(run, store, out_dir, report)
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


def _merge(run: _Run, store: EventStore, out_dir: Path, report: IngestReport) -> None:
    """Merge the run's accepted events into the store (duplicates of earlier runs and within the run dropped),
    rewrite the daily stats, and count both in ``report``."""
    counts = run.merge()
    report.rows_valid = counts["new"]
    report.rows_duplicate = counts["duplicate_of_earlier_runs"] + counts["duplicate_in_run"]
    report.duplicate_of_earlier_runs = counts["duplicate_of_earlier_runs"]
    report.duplicate_in_run = counts["duplicate_in_run"]
    report.stats_rows = store.write_stats(out_dir / STATS_FILE)
    for key, value in store.totals().items():
        setattr(report, key, value)


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


@dataclass
class _File:
    """One event file of the run and what became of it."""

    index: int  # position in the sorted file list: its rows' seq start at index << SEQ_BITS
    path: Path
    name: str
    quarantine: QuarantineWriter | None = None
    layout: str | None = None  # the SQL scan's key; None: the Python path (check_batch)
    rows: int = 0
    candidates: int = 0  # rows of an SQL-checked file decided by check_batch
    reasons: Counter[str] = field(default_factory=Counter)
    error: BaseException | None = None  # unreadable: none of its rows count
    written: Path | None = None  # its quarantine file

    def report_to(self, report: IngestReport) -> None:
        if self.error is not None:
            _report_unreadable(report, self.name, self.error)
            return
        report.files_read.append(self.name)
        report.rows_read += self.rows
        report.add_reasons(dict(self.reasons))
        if self.written is not None:
            report.quarantine_files.append(self.written.name)


class _Run:
    """The files of one run: SQL-checked where their schema allows (``event_sql``), else ``check_batch``."""

    def __init__(
        self,
        events_dir: Path,
        out_dir: Path,
        store: EventStore,
        config: IngestConfig,
        as_of: datetime,
        index: CreativeIndex | None,
    ):
        self.events_dir, self.out_dir, self.store, self.config = events_dir, out_dir, store, config
        self.as_of, self.index = as_of, index
        limit = pd.Timestamp(as_of).tz_convert("UTC") + pd.Timedelta(seconds=config.future_tolerance_s)
        self.limit_us = limit.value // 1000
        self.checked: list[_File] = []  # read by the SQL scan
        if index is not None:
            store.set_creatives(index.creative_ids, index.product_ids)

    def ingest(self, paths: list[Path]) -> list[_File]:
        """Check every file; rows of SQL-checked files stay in their parquet files until ``merge``."""
        files = [_File(i, path, path.relative_to(self.events_dir).as_posix()) for i, path in enumerate(paths)]
        for file in tqdm(files, desc="ingest", unit="file", leave=False):
            try:
                file.quarantine = QuarantineWriter(self.out_dir / QUARANTINE_DIR, file.path, file.name)
            except OSError as err:  # the file cannot even be hashed
                file.error = err
                continue
            file.layout, file.rows = _sql_layout(file.path)
            if file.layout is None:
                self._check_in_python(file)
            else:
                self.checked.append(file)
        candidates = self._scan()
        if self._check_candidates(candidates):
            self._scan(find_candidates=False)  # staged candidates or files moved: count duplicates again
        for file in self.checked:
            file.written = file.quarantine.commit()
        return files

    def merge(self) -> dict[str, int]:
        valid = sum(file.rows - file.candidates for file in self.checked)
        return self.store.merge(self._rows_sql(checks=False), valid)

    def _rows_sql(self, indexes: range | None = None, checks: bool = True) -> str | None:
        """The SQL-checked files (those of ``indexes``) as one SELECT (a UNION ALL over their layouts), None
        when there is none."""
        layouts: dict[str, list[_File]] = {}
        for file in self.checked:
            if indexes is None or file.index in indexes:
                layouts.setdefault(file.layout, []).append(file)
        creatives = self.index is not None
        parts = [
            event_rows_sql([f.path for f in group], [f.index for f in group], layout, checks, creatives)
            for layout, group in layouts.items()
        ]
        return " UNION ALL ".join(f"({part})" for part in parts) if parts else None

    def _scan(self, find_candidates: bool = True) -> np.ndarray:
        """The candidates of the SQL-checked files; a file DuckDB cannot read goes to the Python path."""
        while True:
            try:
                found = self.store.scan(self._rows_sql(), self.limit_us)
                if not find_candidates:
                    return np.zeros(0, np.int64)
                first, last = (
                    (seq >> SEQ_BITS for seq in found) if found else (0, -1)
                )  # files with candidates
                return self.store.find_candidates(self._rows_sql(range(first, last + 1)), self.limit_us)
            except duckdb.Error:
                failing = [file for file in self.checked if not self._readable_by_sql(file)]
                if not failing:
                    raise
                for file in failing:
                    log.info("%s: not read by DuckDB; checked in Python", file.name)
                    self._move_to_python(file)

    def _readable_by_sql(self, file: _File) -> bool:
        sql = event_rows_sql([file.path], [file.index], file.layout, True, self.index is not None)
        try:
            self.store.con.execute(f"SELECT count(*), count_if(ok) FROM ({sql})", {"limit_us": self.limit_us})
        except duckdb.Error:
            return False
        return True

    def _move_to_python(self, file: _File) -> None:
        self.checked.remove(file)
        file.layout, file.rows, file.candidates, file.reasons = None, 0, 0, Counter()
        self._check_in_python(file)

    def _check_candidates(self, candidates: np.ndarray) -> bool:
        """Decide the candidates with ``check_batch``; True when a row was staged or a file moved."""
        changed = False
        by_file = candidates >> SEQ_BITS
        for file in list(self.checked):
            lo, hi = np.searchsorted(by_file, [file.index, file.index + 1])
            if lo == hi:
                continue
            rows = candidates[lo:hi] - seq_of(file.index)
            file.candidates = len(rows)
            self.store.begin_file()
            try:
                for table, file_rows in _read_rows(file.path, rows, self.config.batch_rows):
                    result = check_batch(table, self.as_of, self.config.future_tolerance_s, self.index)
                    refused = result.quarantined["row"].to_numpy()
                    kept = np.setdiff1d(np.arange(table.num_rows), refused, assume_unique=True)
                    self.store.stage(result.valid, seq_of(file.index) + file_rows[kept])
                    changed |= len(kept) > 0
                    quarantined = result.quarantined.set_column(
                        0, "row", pa.array(file_rows[refused], pa.int64())
                    )
                    file.quarantine.write(quarantined)
                    file.reasons.update(result.reason_counts)
            except _UnreadableFile:  # DuckDB read it, pyarrow does not: as the Python path decides
                self.store.rollback_file()
                file.quarantine.abort()
                self._move_to_python(file)
                changed = True
                continue
            except BaseException:
                self.store.rollback_file()
                file.quarantine.abort()
                raise
            self.store.commit_file()
        return changed

    def _check_in_python(self, file: _File) -> None:
        """Read one file batch by batch; on a read error undo its rows and report it as unreadable."""
        store, quarantine, config = self.store, file.quarantine, self.config
        reasons: Counter[str] = Counter()  # applied to the file only once it was read to its end
        rows = valid = 0
        store.begin_file()
        try:
            for batch in _read_batches(file.path, config.batch_rows):
                result = check_batch(
                    batch, self.as_of, config.future_tolerance_s, self.index, row_offset=rows
                )
                rows += batch.num_rows
                n = result.valid.num_rows
                store.stage(result.valid, seq_of(file.index, valid) + np.arange(n))
                valid += n
                quarantine.write(result.quarantined)
                reasons.update(result.reason_counts)
        except _UnreadableFile as err:
            store.rollback_file()
            quarantine.abort()
            file.error = err.__cause__ or err
            return
        except BaseException:
            store.rollback_file()
            quarantine.abort()
            raise
        store.commit_file()
        file.written = quarantine.commit()
        file.rows, file.reasons = rows, reasons


def _sql_layout(path: Path) -> tuple[str | None, int]:
    """(SQL layout, rows) from the file's footer; (None, 0) when it cannot be read (the Python path says why)
    or when DuckDB would take its name for a glob pattern."""
    if any(char in str(path) for char in GLOB_CHARS):
        return None, 0
    try:
        metadata = pq.ParquetFile(path).metadata
        return sql_layout(metadata.schema.to_arrow_schema()), metadata.num_rows
    except (OSError, pa.ArrowException):
        return None, 0


def _read_batches(
    path: Path, batch_rows: int, row_groups: list[int] | None = None
) -> Iterator[pa.RecordBatch]:
    """Record batches of a parquet file; any read failure (truncated, corrupt, not parquet) is unreadable."""
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=batch_rows, row_groups=row_groups)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            yield batch
    except (OSError, pa.ArrowException) as err:
        raise _UnreadableFile(str(err)) from err


def _read_rows(path: Path, rows: np.ndarray, batch_rows: int) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """The given rows (sorted) of a parquet file as read by pyarrow, batch by batch, with their numbers."""
    try:
        sizes = [g.num_rows for g in _row_groups(path)]
    except (OSError, pa.ArrowException) as err:
        raise _UnreadableFile(str(err)) from err
    starts = np.concatenate([[0], np.cumsum(sizes)])
    groups = sorted({int(g) for g in np.searchsorted(starts, rows, side="right") - 1})
    for group in groups:
        offset = int(starts[group])
        for batch in _read_batches(path, batch_rows, [group]):
            lo, hi = np.searchsorted(rows, [offset, offset + batch.num_rows])
            if hi > lo:
                picked = rows[lo:hi]
                yield pa.Table.from_batches([batch]).take(pa.array(picked - offset)), picked
            offset += batch.num_rows


def _row_groups(path: Path) -> list:
    metadata = pq.ParquetFile(path).metadata
    return [metadata.row_group(i) for i in range(metadata.num_row_groups)]


def _report_unreadable(report: IngestReport, name: str, err: BaseException) -> None:
    message = f"{type(err).__name__}: {err}".splitlines()[0][:300]
    report.files_unreadable.append({"file": name, "error": message})
    log.warning("unreadable file %s (%s); skipped, the run goes on", name, message)
