"""The accepted events of a stats directory, in a DuckDB file: what makes ingestion idempotent.

``DS/ingest_state.duckdb`` holds every event ever accepted (one row per ``event_id``). A run's valid rows
come from two places: files in the event schema are scanned by DuckDB straight from parquet (the rows whose
``ok`` is true, see ``event_sql``), the rows of other files and the candidates that ``check_batch`` found
valid are staged. Every valid row carries ``seq`` (file, then row): ``scan`` keeps the first ``seq`` of each
``event_id`` seen more than once in the run, and ``merge`` inserts each ``event_id`` not seen before once,
from its first row, so the same or overlapping files ingested again add nothing. DuckDB runs the joins and
aggregations under a memory limit and spills to ``DS/.duckdb_tmp`` beyond it, so memory stays bounded at any
log size.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
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

    def set_creatives(self, creative_ids: pa.Array, product_ids: pa.Array) -> None:
        """The known creatives (one row per creative), for the SQL checks of unknown creatives and products."""
        known = pa.table({"creative_id": creative_ids, "product_id": product_ids})  # noqa: F841 (read below)
        self.con.execute("CREATE OR REPLACE TEMP TABLE creatives AS SELECT * FROM known")

    def stage(self, valid: pa.Table, seq: np.ndarray) -> None:
        """Add valid rows (event schema + ``date``) with their ``seq`` to this run's staging table."""
        if valid.num_rows == 0:
            return
        batch = valid.add_column(0, "seq", pa.array(seq, pa.int64()))  # noqa: F841 (read by DuckDB below)
        self.con.execute("INSERT INTO staging SELECT * FROM batch")

    def commit_file(self) -> None:
        self.con.commit()

    def rollback_file(self) -> None:
        self.con.rollback()

    def scan(self, checked: str | None, limit_us: int) -> tuple[int, int] | None:
        """One pass over the valid rows: remember the first ``seq`` of every ``event_id`` seen more than once.

        Args:
            checked: a SELECT of the SQL-checked rows with ``ok`` (``event_sql.event_rows_sql``), or None.
            limit_us: the future limit of ``ts``, microseconds since the epoch.

        Returns:
            The smallest and largest ``seq`` of the SQL-checked rows that are not certainly valid (the
            candidates; ``find_candidates`` lists them), or None when there is none.
        """
        rows = "SELECT seq, event_id, true AS ok FROM staging"
        if checked is not None:
            rows = f"SELECT seq, event_id, ok FROM ({checked}) UNION ALL {rows}"
        # One key, the event_id, for valid rows; every candidate falls into the group of the null key.
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE scanned AS
                SELECT CASE WHEN ok THEN event_id END AS event_id, min(seq) AS first_seq, max(seq) AS last_seq
                FROM ({rows}) GROUP BY ALL HAVING count(*) > 1 OR event_id IS NULL""",
            {"limit_us": limit_us} if checked is not None else None,
        )
        self.con.execute("""CREATE OR REPLACE TEMP TABLE first_seq AS
            SELECT event_id, first_seq FROM scanned WHERE event_id IS NOT NULL""")
        found = self.con.execute("SELECT first_seq, last_seq FROM scanned WHERE event_id IS NULL").fetchone()
        self.con.execute("DROP TABLE scanned")
        return (int(found[0]), int(found[1])) if found else None

    def find_candidates(self, checked: str | None, limit_us: int) -> np.ndarray:
        """The ``seq`` of the rows of ``checked`` that are not ``ok``, sorted; also kept in the table
        ``candidates``, which ``merge`` leaves out of the SQL-checked rows. None: there is none."""
        if checked is None:
            self.con.execute("CREATE OR REPLACE TEMP TABLE candidates (seq BIGINT NOT NULL)")
            return np.zeros(0, np.int64)
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE candidates AS
                SELECT seq FROM ({checked}) WHERE NOT ok ORDER BY seq""",
            {"limit_us": limit_us},
        )
        return np.asarray(self.con.execute("FROM candidates").fetchnumpy()["seq"], dtype=np.int64)

    def merge(self, rows: str | None, checked_valid: int) -> dict[str, int]:
        """Insert the first occurrence of each new ``event_id`` of this run's valid rows into ``events``.

        Args:
            rows: the SELECT given to ``scan`` without ``ok`` (``event_rows_sql(checks=False)``): its rows
                but the candidates are valid (the candidates found valid are staged); or None.
            checked_valid: how many of the SQL-checked rows are ``ok`` (rows read minus candidates).

        Returns counts: staged (valid rows), new (inserted), duplicate_of_earlier_runs, duplicate_in_run.
        """
        con = self.con
        columns = "seq, event_id, ts, product_id, creative_id, segment, clicked, date"
        valid = f"SELECT {columns} FROM staging"
        if rows is not None:
            if con.execute("SELECT count(*) FROM candidates").fetchone()[0]:
                rows = f"SELECT * FROM ({rows}) ANTI JOIN candidates USING (seq)"
            valid = f"SELECT {columns} FROM ({rows}) UNION ALL {valid}"
        staged = checked_valid + con.execute("SELECT count(*) FROM staging").fetchone()[0]
        earlier = con.execute("SELECT count(*) > 0 FROM (SELECT 1 FROM events LIMIT 1)").fetchone()[0]
        seen = 0
        if earlier:
            seen = con.execute(
                f"SELECT count(*) FROM ({valid}) SEMI JOIN events USING (event_id)"
            ).fetchone()[0]
        new_only = "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = v.event_id)" if earlier else ""
        con.begin()
        new = con.execute(
            f"""INSERT INTO events (event_id, ts, product_id, creative_id, segment, clicked, date)
                SELECT v.event_id, v.ts, v.product_id, v.creative_id, v.segment, v.clicked, v.date
                FROM ({valid}) v LEFT JOIN first_seq f ON f.event_id = v.event_id
                WHERE (f.first_seq IS NULL OR v.seq = f.first_seq) {new_only}"""
        ).fetchone()[0]
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
