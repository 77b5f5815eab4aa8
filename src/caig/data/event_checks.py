"""Row checks of raw event batches: coerce to the event schema and give every bad row one reason.

Real logs arrive with any column types; a parquet column is typed, so a wrong type affects a whole column
of a file (an integer ``creative_id``) or single values of a text column (a ``ts`` that does not parse).
Each row gets the first reason that applies, in the order of ``REASONS``; rows without one are valid.
Everything here is vectorised with pyarrow / numpy so that a batch of 250k rows takes milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from caig.data.events import EVENT_SCHEMA
from caig.data.values import CLICKED_FALSE_TEXT, CLICKED_RULE, CLICKED_TRUE_TEXT

# Quarantine reasons, in priority order (a row failing several checks gets the first).
REASONS = (
    "wrong_type",
    "null_id",
    "missing_value",
    "future_timestamp",
    "unknown_creative",
    "product_mismatch",
)
ID_COLUMNS = ("event_id", "product_id", "creative_id")
STRING_COLUMNS = ("event_id", "product_id", "creative_id", "segment")
TS_TYPE = pa.timestamp("us", tz="UTC")


@dataclass
class CreativeIndex:
    """The known creatives and their products, to quarantine events of unknown or mismatched creatives."""

    creative_ids: pa.Array
    product_ids: pa.Array

    @classmethod
    def from_frame(cls, creatives: pd.DataFrame) -> CreativeIndex:
        table = creatives.drop_duplicates("creative_id")
        return cls(pa.array(table["creative_id"].astype(str)), pa.array(table["product_id"].astype(str)))


@dataclass
class CheckedBatch:
    """A batch split into valid rows (event schema + ``date``) and quarantined rows (raw text + reason)."""

    valid: pa.Table
    quarantined: pa.Table

    @property
    def reason_counts(self) -> dict[str, int]:
        if self.quarantined.num_rows == 0:
            return {}
        counts = pc.value_counts(self.quarantined["reason"]).to_pylist()
        return {c["values"]: int(c["counts"]) for c in counts}


class _Verdict:
    """Collects (reason, mask, detail) findings and resolves one reason per row by priority."""

    def __init__(self, n: int):
        self.n = n
        self.code = np.zeros(n, dtype=np.int8)  # 0 = valid, else 1 + index into REASONS
        self.detail = np.full(n, None, dtype=object)

    def add(self, reason: str, mask: np.ndarray, detail: str) -> None:
        rank = REASONS.index(reason) + 1
        take = mask & ((self.code == 0) | (self.code > rank))
        self.code[take] = rank
        self.detail[take] = detail

    @property
    def bad(self) -> np.ndarray:
        return self.code > 0

    def reasons(self) -> np.ndarray:
        names = np.array((None, *REASONS), dtype=object)
        return names[self.code]


def check_batch(
    batch: pa.RecordBatch | pa.Table,
    as_of: datetime,
    future_tolerance_s: int,
    creatives: CreativeIndex | None,
    row_offset: int = 0,
) -> CheckedBatch:
    """Coerce ``batch`` to the event schema and split it into valid and quarantined rows.

    Args:
        batch: rows read from one file, with whatever column types the file has.
        as_of: "now" for the future-timestamp check (timezone-aware).
        future_tolerance_s: seconds after ``as_of`` still accepted (clock skew).
        creatives: known creatives, or None to skip the unknown-creative and product checks.
        row_offset: index of the batch's first row in its file, written to the quarantine.
    """
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    n = table.num_rows
    verdict = _Verdict(n)
    columns = {name: _coerce_string(table, name, verdict) for name in STRING_COLUMNS}
    columns["ts"] = _coerce_ts(table, verdict)
    columns["clicked"] = _coerce_clicked(table, verdict)
    for name in ID_COLUMNS:
        verdict.add("null_id", _blank(columns[name]), f"{name} is null or empty")
    verdict.add("missing_value", _blank(columns["segment"]), "segment is null or empty")
    verdict.add("missing_value", _null(columns["ts"]), "ts is null")
    verdict.add("missing_value", _null(columns["clicked"]), "clicked is null")
    limit = pd.Timestamp(as_of).tz_convert("UTC") + pd.Timedelta(seconds=future_tolerance_s)
    future = pc.greater(columns["ts"], pa.scalar(limit.to_pydatetime(), TS_TYPE))
    verdict.add("future_timestamp", _true(future), f"ts is after {limit.isoformat()}")
    if creatives is not None:
        _check_creatives(columns, creatives, verdict)
    typed = pa.table({name: columns[name] for name in EVENT_SCHEMA.names}, schema=EVENT_SCHEMA)
    bad = verdict.bad
    valid = typed.filter(pa.array(~bad))
    valid = valid.append_column("date", pc.cast(valid["ts"], pa.date32()))
    quarantined = _quarantine_rows(table, verdict, bad, row_offset)
    return CheckedBatch(valid=valid, quarantined=quarantined)


def _check_creatives(columns: dict[str, pa.Array], creatives: CreativeIndex, verdict: _Verdict) -> None:
    index = pc.index_in(columns["creative_id"], value_set=creatives.creative_ids)
    verdict.add(
        "unknown_creative",
        _null(index) & ~_null(columns["creative_id"]),
        "creative_id is not in the creatives table",
    )
    expected = pc.take(creatives.product_ids, index)
    mismatch = pc.not_equal(expected, columns["product_id"])
    verdict.add("product_mismatch", _true(mismatch), "product_id differs from the creatives table's")


def _coerce_string(table: pa.Table, name: str, verdict: _Verdict) -> pa.Array:
    if name not in table.column_names:
        verdict.add("wrong_type", np.ones(verdict.n, bool), f"column {name} is missing")
        return pa.nulls(verdict.n, pa.string())
    col = table[name].combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return pc.cast(col, pa.string())
    if pa.types.is_null(col.type):
        return pa.nulls(verdict.n, pa.string())
    verdict.add("wrong_type", ~_null(col), f"{name} is {col.type}, expected string")
    return pa.nulls(verdict.n, pa.string())


def _coerce_ts(table: pa.Table, verdict: _Verdict) -> pa.Array:
    if "ts" not in table.column_names:
        verdict.add("wrong_type", np.ones(verdict.n, bool), "column ts is missing")
        return pa.nulls(verdict.n, TS_TYPE)
    col = table["ts"].combine_chunks()
    if pa.types.is_timestamp(col.type):  # a naive timestamp is taken as UTC
        utc = col if col.type.tz else pc.assume_timezone(col, "UTC")
        return pc.cast(utc, TS_TYPE)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        out = _parse_ts_text(pc.cast(col, pa.string()))
        verdict.add("wrong_type", _null(out) & ~_null(col), "ts is not an ISO-8601 timestamp")
        return out
    if pa.types.is_null(col.type):
        return pa.nulls(verdict.n, TS_TYPE)
    verdict.add("wrong_type", ~_null(col), f"ts is {col.type}, expected a timestamp")
    return pa.nulls(verdict.n, TS_TYPE)


def _parse_ts_text(col: pa.Array) -> pa.Array:
    """ISO-8601 text to UTC timestamps (naive text is UTC); unparseable values become null."""
    try:
        return pc.cast(col, TS_TYPE)  # fast path: every value has a zone offset
    except pa.ArrowInvalid:
        pass
    parsed = {}
    for text in pc.unique(col).to_pylist():
        try:
            value = datetime.fromisoformat(text.strip()) if text is not None else None
        except ValueError:
            value = None
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        parsed[text] = value
    return pa.array([parsed[t] for t in col.to_pylist()], TS_TYPE)


def _coerce_clicked(table: pa.Table, verdict: _Verdict) -> pa.Array:
    if "clicked" not in table.column_names:
        verdict.add("wrong_type", np.ones(verdict.n, bool), "column clicked is missing")
        return pa.nulls(verdict.n, pa.bool_())
    col = table["clicked"].combine_chunks()
    if pa.types.is_boolean(col.type):
        return col
    if pa.types.is_integer(col.type):
        ok = pc.is_in(col, value_set=pa.array([0, 1], col.type))
        verdict.add("wrong_type", ~_true(ok) & ~_null(col), "clicked is an integer other than 0 or 1")
        return pc.if_else(ok, pc.equal(col, pa.scalar(1, col.type)), pa.scalar(None, pa.bool_()))
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        text = pc.utf8_lower(pc.utf8_trim_whitespace(col))
        is_true = pc.is_in(text, value_set=pa.array(CLICKED_TRUE_TEXT))
        is_false = pc.is_in(text, value_set=pa.array(CLICKED_FALSE_TEXT))
        ok = pc.or_(is_true, is_false)
        verdict.add("wrong_type", ~_true(ok) & ~_null(col), f"clicked is not {CLICKED_RULE}")
        return pc.if_else(ok, is_true, pa.scalar(None, pa.bool_()))
    if pa.types.is_null(col.type):
        return pa.nulls(verdict.n, pa.bool_())
    verdict.add("wrong_type", ~_null(col), f"clicked is {col.type}, expected bool")
    return pa.nulls(verdict.n, pa.bool_())


def _quarantine_rows(table: pa.Table, verdict: _Verdict, bad: np.ndarray, row_offset: int) -> pa.Table:
    """The bad rows as text (whatever their types were), with row index, reason and detail."""
    rows = np.flatnonzero(bad)
    out = {"row": pa.array(rows + row_offset, pa.int64())}
    picked = table.take(pa.array(rows, pa.int64()))
    for name in EVENT_SCHEMA.names:
        out[name] = (
            _as_text(picked[name].combine_chunks())
            if name in picked.column_names
            else pa.nulls(len(rows), pa.string())
        )
    out["reason"] = pa.array(verdict.reasons()[rows], pa.string())
    out["detail"] = pa.array(verdict.detail[rows], pa.string())
    return pa.table(out)


def _as_text(col: pa.Array) -> pa.Array:
    try:
        return pc.cast(col, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.string())


def _null(col: pa.Array) -> np.ndarray:
    return pc.is_null(col).to_numpy(zero_copy_only=False)


def _true(mask: pa.Array) -> np.ndarray:
    """True where ``mask`` is true; null counts as false."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _blank(col: pa.Array) -> np.ndarray:
    empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0)
    return _null(col) | _true(empty)
