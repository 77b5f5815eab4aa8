"""Quarantine files: the rows that ingestion refused, with the source file, row and reason of each.

One parquet file per source file, named after the source's content hash, so that ingesting the same file
again replaces its quarantine file instead of adding a second copy. Rows are streamed batch by batch; the
file only appears (atomically, by rename) when the whole source file was read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("row", pa.int64()),
        ("event_id", pa.string()),
        ("ts", pa.string()),
        ("product_id", pa.string()),
        ("creative_id", pa.string()),
        ("segment", pa.string()),
        ("clicked", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes (hex), read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class QuarantineWriter:
    """Streams one source file's refused rows into ``quarantine/<stem>-<hash12>.parquet``."""

    def __init__(self, directory: Path, source: Path, source_name: str):
        self.directory = directory
        self.source_name = source_name
        self.final = directory / f"{source.stem}-{file_digest(source)[:12]}.parquet"
        self.partial = self.final.with_suffix(".partial")
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.partial, QUARANTINE_SCHEMA)
        source = pa.array([self.source_name] * rows.num_rows, pa.string())
        table = rows.add_column(0, "source_file", source).select(QUARANTINE_SCHEMA.names)
        self._writer.write_table(table.cast(QUARANTINE_SCHEMA))
        self.rows += rows.num_rows

    def commit(self) -> Path | None:
        """Publish the file (replacing an earlier one of the same source); None when no row was refused."""
        if self._writer is None:
            self.final.unlink(missing_ok=True)
            return None
        self._writer.close()
        self.partial.replace(self.final)
        return self.final

    def abort(self) -> None:
        """Forget the rows written so far (the source turned out unreadable)."""
        if self._writer is not None:
            self._writer.close()
            self.partial.unlink(missing_ok=True)
        self._writer = None
        self.rows = 0


def read_quarantine(directory: Path) -> pa.Table:
    """Every quarantined row under ``directory`` (empty table when there is none)."""
    files = sorted(Path(directory).glob("*.parquet"))
    if not files:
        return QUARANTINE_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(f, schema=QUARANTINE_SCHEMA) for f in files])
