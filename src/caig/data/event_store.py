"""The accepted events of a stats directory, in a DuckDB file: what makes ingestion idempotent.

``DS/ingest_state.duckdb`` holds every event ever accepted (one row per ``event_id``). A run stages its
valid rows, then one anti-join keeps the first occurrence of each ``event_id`` not seen before, so the
same or overlapping files ingested again add nothing. DuckDB runs the joins and aggregations under a
memory limit and spills to ``DS/.duckdb_tmp`` beyond it, so memory stays bounded at any log size.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow as pa

STATE_FILE = "ingest_state.duckdb"
STATS_COLUMNS = ["creative_id", "product_id", "date", "segment", "impressions", "clicks"]
_EVENT_COLUMNS = """event_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, product_id VARCHAR NOT NULL,
    creative_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, clicked BOOLEAN NOT NULL, date DATE NOT NULL"""


class EventStore:
    """Accepted events of one stats directory; use as a context manager."""

    def __init__(self, directory: Path, memory_limit: str = "1GB", threads: int = 2):
        self.directory = Path(directory)
        self.tmp = self.directory / ".duckdb_tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(
            str(self.directory / STATE_FILE),
            config={
                "memory_limit": memory_limit,
                "threads": threads,
                "temp_directory": str(self.tmp),
                "preserve_insertion_order": False,
            },
        )
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"CREATE TABLE IF NOT EXISTS events ({_EVENT_COLUMNS})")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE staging (seq BIGINT NOT NULL, {_EVENT_COLUMNS})")
        self._seq = 0

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.execute("DROP TABLE IF EXISTS staging")
        self.con.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def begin_file(self) -> None:
        self.con.begin()

    def stage(self, valid: pa.Table) -> None:
        """Add valid rows (event schema + ``date``) to this run's staging table."""
        if valid.num_rows == 0:
            return
        seq = pa.array(range(self._seq, self._seq + valid.num_rows), pa.int64())
        self._seq += valid.num_rows
        batch = valid.add_column(0, "seq", seq)  # noqa: F841 (read by DuckDB's replacement scan below)
        self.con.execute("INSERT INTO staging SELECT * FROM batch")

    def commit_file(self) -> None:
        self.con.commit()

    def rollback_file(self) -> None:
        self.con.rollback()

    def merge(self) -> dict[str, int]:
        """Move the first occurrence of each new ``event_id`` from staging into ``events``.

        Returns counts: staged, new (inserted), duplicate_of_earlier_runs, duplicate_in_run.
        """
        con = self.con
        staged = con.execute("SELECT count(*) FROM staging").fetchone()[0]
        seen = con.execute("SELECT count(*) FROM staging SEMI JOIN events USING (event_id)").fetchone()[0]
        con.begin()
        new = con.execute("""
            INSERT INTO events
            SELECT event_id, ts, product_id, creative_id, segment, clicked, date FROM (
                SELECT s.*, row_number() OVER (PARTITION BY event_id ORDER BY seq) AS k
                FROM staging s ANTI JOIN events USING (event_id)
            ) WHERE k = 1""").fetchone()[0]
        con.execute("DELETE FROM staging")
        con.commit()
        return {
            "staged": int(staged),
            "new": int(new),
            "duplicate_of_earlier_runs": int(seen),
            "duplicate_in_run": int(staged - seen - new),
        }

    def write_stats(self, path: Path) -> int:
        """Write per-creative daily stats of all accepted events to ``path`` (atomically); return rows."""
        partial = path.with_suffix(".partial")
        self.con.execute(f"""
            COPY (SELECT creative_id, product_id, date, segment,
                         count(*)::BIGINT AS impressions, sum(clicked::INTEGER)::BIGINT AS clicks
                  FROM events GROUP BY ALL ORDER BY creative_id, date, segment)
            TO '{_sql_text(partial)}' (FORMAT parquet)""")
        partial.replace(path)
        return int(self.con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()[0])

    def totals(self) -> dict:
        row = self.con.execute(
            "SELECT count(*), coalesce(sum(clicked::INTEGER), 0), min(date), max(date) FROM events"
        ).fetchone()
        return {
            "events_total": int(row[0]),
            "clicks_total": int(row[1]),
            "first_date": row[2].isoformat() if row[2] else None,
            "last_date": row[3].isoformat() if row[3] else None,
        }


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")


def sample_events(directory: Path, rows: int, seed: int = 0) -> pa.Table:
    """Up to ``rows`` accepted events of a stats directory, drawn by reservoir sampling (bounded memory)."""
    path = Path(directory) / STATE_FILE
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(
            f"SELECT * FROM events USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE ({int(seed)})"
        ).to_arrow_table()
