"""The row checks of ``event_checks`` as one DuckDB scan, for files already in the event schema.

A file whose columns are exactly the event schema's (strings, a UTC or naive timestamp of at most
microsecond precision, a bool) is scanned by DuckDB straight from parquet: no Arrow batch reaches Python.
The scan computes ``ok``, true only for rows that certainly pass every check of ``check_batch``:

- every id and the segment start with a printable, non-space ASCII character, so they are not null and
  not blank (a blank string starts with whitespace, whatever the definition of whitespace);
- ``ts`` and ``clicked`` are not null and ``ts`` is at most the future limit (microseconds, exact);
- with a creatives table, the creative is known and its product is the row's.

Rows without ``ok`` are *candidates*: ``check_batch`` decides them (reason, detail, or valid after all, e.g.
an id that starts with a non-ASCII letter), reading the same rows from the file with pyarrow, so a
quarantined row and its reason are the same as the Python path's. Every other file (text timestamps,
integer clicks, missing or extra columns, ...) goes through ``check_batch`` batch by batch.

Rows are ordered by ``seq = file index << SEQ_BITS | row``: the first occurrence of an ``event_id`` is the
one in the first file (sorted by name), then the first row, on either path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from caig.data.event_checks import STRING_COLUMNS
from caig.data.events import EVENT_SCHEMA

SEQ_BITS = 40  # rows per file below 2**40; file indexes below 2**23
UTC_NAMES = (None, "UTC", "+00:00", "Etc/UTC")


def sql_layout(schema: pa.Schema) -> str | None:
    """A key shared by the files one SQL scan reads alike, or None when the file needs ``check_batch``."""
    names = schema.names
    if sorted(names) != sorted(EVENT_SCHEMA.names):  # missing or extra columns: the Python path reads
        return None  # (and checks) every column of a file
    for name in STRING_COLUMNS:
        kind = schema.field(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return None
    ts = schema.field("ts").type
    if not pa.types.is_timestamp(ts) or ts.unit not in ("s", "ms", "us") or ts.tz not in UTC_NAMES:
        return None
    if not pa.types.is_boolean(schema.field("clicked").type):
        return None
    naive = "naive" if ts.tz is None else "utc"
    return f"{naive}:{','.join(names)}"


def seq_of(file_index: int, row: int = 0) -> int:
    return (file_index << SEQ_BITS) + row


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _printable_start(column: str) -> str:
    return f"(ascii(r.{column}) BETWEEN 33 AND 126)"


def event_rows_sql(
    paths: Sequence[Path], file_indexes: Sequence[int], layout: str, checks: bool, creatives: bool
) -> str:
    """SELECT of ``seq, event_id, ts, product_id, creative_id, segment, clicked, date`` over ``paths``,
    and with ``checks`` also ``ok``.

    With ``checks``, ``$limit_us`` (the future limit, microseconds since the epoch) is a parameter of the
    statement and, with ``creatives``, a table ``creatives(creative_id, product_id)`` must exist (one row per
    creative).
    """
    files = "[" + ", ".join(_text(str(p)) for p in paths) + "]"
    indexes = "[" + ", ".join(str(int(i)) for i in file_indexes) + "]"
    us = "epoch_us(r.ts)"
    ts = "r.ts::TIMESTAMPTZ" if layout.startswith("naive:") else "r.ts"  # naive timestamps are UTC
    ok = [_printable_start(c) for c in STRING_COLUMNS]
    ok += ["r.clicked IS NOT NULL", f"{us} <= $limit_us"]
    join = ""
    if checks and creatives:
        ok.append("c.product_id = r.product_id")
        join = "LEFT JOIN creatives c ON c.creative_id = r.creative_id"
    verdict = f",\n               coalesce({' AND '.join(ok)}, false) AS ok" if checks else ""
    return f"""
        SELECT ({indexes}[file_index::BIGINT + 1]::BIGINT << {SEQ_BITS}) + file_row_number AS seq,
               r.event_id, {ts} AS ts, r.product_id, r.creative_id, r.segment, r.clicked,
               make_timestamp({us})::DATE AS date{verdict}
        FROM read_parquet({files}, file_row_number = true) r {join}"""
