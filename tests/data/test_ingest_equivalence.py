"""The SQL path of ingestion gives exactly what the batch-by-batch Python path gave, on every kind of file.

``reference_ingest`` below is the ingestion as it was before the SQL path: every file read in record batches
and checked by ``check_batch``, valid rows staged, the first occurrence of each ``event_id`` kept by a
window over every staged row. Both run on the same inputs (good files with repeated ids, bad rows of every
reason and the edge cases of the SQL pre-check, naive and large-string schemas, files only the Python path
reads, truncated, corrupt and non-parquet files, an empty file) twice, the second run overlapping the first;
after each run the accepted events, creative_stats.parquet, the quarantine files and the report must be
the same (timings aside).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import caig.data.ingest as ingest_module
from caig.data.config import IngestConfig
from caig.data.event_checks import CreativeIndex, check_batch
from caig.data.event_sql import sql_layout
from caig.data.event_store import STATE_FILE
from caig.data.events import EVENT_SCHEMA
from caig.data.ingest import QUARANTINE_DIR, STATS_FILE, ingest_events, list_event_files
from caig.data.quarantine import QuarantineWriter
from caig.data.report import REPORT_FILE, IngestReport

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
CONFIG = IngestConfig(batch_rows=64, memory_limit="256MB", threads=2, max_quarantine_share=1.0)
N_CREATIVES = 40
TIMINGS = ("elapsed_s", "events_per_s")


# --- the reference: ingestion before the SQL path -------------------------------------------------------


def reference_ingest(events_dir: Path, out_dir: Path, config: IngestConfig, creatives=None) -> None:
    """Every file batch by batch through ``check_batch``; first occurrences kept by a window over staging."""
    files = list_event_files(events_dir)
    index = CreativeIndex.from_frame(creatives) if creatives is not None else None
    report = IngestReport(
        as_of=AS_OF.isoformat(),
        max_quarantine_share=config.max_quarantine_share,
        creatives_checked=index is not None,
        max_unreadable_files=config.max_unreadable_files,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(out_dir / STATE_FILE))
    con.execute("SET TimeZone = 'UTC'")
    columns = """event_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, product_id VARCHAR NOT NULL,
        creative_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, clicked BOOLEAN NOT NULL, date DATE NOT NULL"""
    con.execute(f"CREATE TABLE IF NOT EXISTS events ({columns})")
    con.execute(f"CREATE TEMP TABLE staging (seq BIGINT NOT NULL, {columns})")
    seq = 0
    for path in files:
        name = path.relative_to(events_dir).as_posix()
        try:
            quarantine = QuarantineWriter(out_dir / QUARANTINE_DIR, path, name)
        except OSError as err:
            _unreadable(report, name, err)
            continue
        reasons: Counter[str] = Counter()
        rows = 0
        con.begin()
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=config.batch_rows):
                result = check_batch(batch, AS_OF, config.future_tolerance_s, index, row_offset=rows)
                rows += batch.num_rows
                valid = result.valid
                if valid.num_rows:
                    staged = valid.add_column(
                        0, "seq", pa.array(range(seq, seq + valid.num_rows), pa.int64())
                    )
                    seq += valid.num_rows
                    con.execute("INSERT INTO staging SELECT * FROM staged")
                quarantine.write(result.quarantined)
                reasons.update(result.reason_counts)
        except (OSError, pa.ArrowException) as err:
            con.rollback()
            quarantine.abort()
            _unreadable(report, name, err)
            continue
        con.commit()
        written = quarantine.commit()
        report.files_read.append(name)
        report.rows_read += rows
        report.add_reasons(dict(reasons))
        if written is not None:
            report.quarantine_files.append(written.name)
    staged = con.execute("SELECT count(*) FROM staging").fetchone()[0]
    seen = con.execute("SELECT count(*) FROM staging SEMI JOIN events USING (event_id)").fetchone()[0]
    new = con.execute("""
        INSERT INTO events
        SELECT event_id, ts, product_id, creative_id, segment, clicked, date FROM (
            SELECT s.*, row_number() OVER (PARTITION BY event_id ORDER BY seq) AS k
            FROM staging s ANTI JOIN events USING (event_id)
        ) WHERE k = 1""").fetchone()[0]
    report.rows_valid = new
    report.duplicate_of_earlier_runs = seen
    report.duplicate_in_run = staged - seen - new
    report.rows_duplicate = staged - new
    con.execute(f"""
        COPY (SELECT creative_id, product_id, date, segment,
                     count(*)::BIGINT AS impressions, sum(clicked::INTEGER)::BIGINT AS clicks
              FROM events GROUP BY ALL ORDER BY creative_id, date, segment)
        TO '{out_dir / STATS_FILE}' (FORMAT parquet)""")
    report.stats_rows = con.execute(f"SELECT count(*) FROM '{out_dir / STATS_FILE}'").fetchone()[0]
    total, clicks, first, last = con.execute(
        "SELECT count(*), coalesce(sum(clicked::INTEGER), 0), min(date), max(date) FROM events"
    ).fetchone()
    report.events_total, report.clicks_total = total, clicks
    report.first_date = first.isoformat() if first else None
    report.last_date = last.isoformat() if last else None
    con.close()
    report.check()
    report.write(out_dir)


def _unreadable(report: IngestReport, name: str, err: BaseException) -> None:
    report.files_unreadable.append(
        {"file": name, "error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}
    )


# --- inputs -----------------------------------------------------------------------------------------------


def _creatives() -> pd.DataFrame:
    ids = [f"C{i:03d}" for i in range(N_CREATIVES)]
    return pd.DataFrame({"creative_id": ids, "product_id": [f"P{i // 4:02d}" for i in range(N_CREATIVES)]})


def _good(rng: np.random.Generator, ids: list[str]) -> pd.DataFrame:
    """Valid rows with the given ids and random content (a repeated id gets different content)."""
    creative = rng.integers(0, N_CREATIVES, len(ids))
    start = pd.Timestamp("2026-10-01", tz="UTC")
    return pd.DataFrame(
        {
            "event_id": ids,
            "ts": start + pd.to_timedelta(rng.integers(0, 28 * 86_400_000_000, len(ids)), unit="us"),
            "product_id": [f"P{c // 4:02d}" for c in creative],
            "creative_id": [f"C{c:03d}" for c in creative],
            "segment": rng.choice(["young", "family", "senior"], len(ids)),
            "clicked": rng.random(len(ids)) < 0.2,
        }
    )


def _edge_rows(rng: np.random.Generator) -> pd.DataFrame:
    """Rows that are bad for each reason, and valid rows the SQL pre-check cannot vouch for."""
    limit = AS_OF + timedelta(seconds=CONFIG.future_tolerance_s)
    edits = [
        {"event_id": None},
        {"event_id": ""},
        {"product_id": "   "},
        {"creative_id": "\u3000"},  # blank for Arrow's whitespace trimming
        {"segment": None},
        {"segment": "\t"},
        {"ts": None},
        {"clicked": None},
        {"ts": AS_OF + timedelta(days=1)},
        {"ts": limit + timedelta(microseconds=1)},
        {"ts": limit},  # valid: exactly the limit
        {"ts": datetime(1960, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)},  # valid, before the epoch
        {"creative_id": "C999"},
        {"creative_id": "C001", "product_id": "P09"},  # the creative of another product
        {"event_id": "\u00e9clair-1"},  # valid: starts with a non-ASCII letter
        {"event_id": "\u200bzero-width"},  # valid: U+200B is not whitespace for Arrow
        {"event_id": "\tz-tab"},  # valid: whitespace, then text
        {"segment": "\u00e9t\u00e9"},  # valid
        {"event_id": "e00005"},  # repeats a good row of an earlier file
        {"event_id": "late-first", "clicked": None},  # invalid first occurrence of an id
        {"event_id": "\u00e9clair-1"},  # valid repeat of a candidate found valid
    ]
    rows = _good(rng, [f"edge-{i:03d}" for i in range(3 * len(edits))])
    records = rows.to_dict("records")
    for k, edit in enumerate(edits):
        records[3 * k + 1].update(edit)
    return pd.DataFrame(records)


def _table(frame: pd.DataFrame, schema: pa.Schema = EVENT_SCHEMA) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def _corrupt_second_row_group(path: Path) -> None:
    meta = pq.ParquetFile(path).metadata
    offset = meta.row_group(1).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


NAIVE_LARGE = pa.schema(
    [
        ("event_id", pa.large_string()),
        ("ts", pa.timestamp("ms")),
        ("product_id", pa.large_string()),
        ("creative_id", pa.string()),
        ("segment", pa.large_string()),
        ("clicked", pa.bool_()),
    ]
)


def _write_inputs(root: Path) -> tuple[Path, Path]:
    """Two folders of logs, the second overlapping the first; returns (first, second)."""
    rng = np.random.default_rng(7)
    first, second = root / "ev1", root / "ev2"
    (first / "sub").mkdir(parents=True)
    second.mkdir()
    ids = [f"e{i:05d}" for i in range(3000)]
    ids[2500:2600] = ids[100:200]  # repeated within the file, with other content
    pq.write_table(_table(_good(rng, ids)), first / "a_good.parquet", row_group_size=1000)
    edge = _edge_rows(rng)
    pq.write_table(_table(edge), first / "b_edge.parquet", row_group_size=7)
    naive = _good(rng, [f"n{i:04d}" for i in range(300)] + ["e00006", "edge-003", "late-first"])
    naive["ts"] = naive["ts"].dt.tz_convert(None).dt.floor("ms")
    naive.loc[5, "ts"] = pd.Timestamp(AS_OF.replace(tzinfo=None)) + pd.Timedelta(hours=3)  # future
    pq.write_table(_table(naive, NAIVE_LARGE), first / "c_naive_large.parquet")
    text = _good(rng, [f"t{i:03d}" for i in range(200)] + ["shared-d-e"]).astype({"ts": str, "clicked": str})
    text.loc[3, "ts"] = "not a time"
    pq.write_table(pa.Table.from_pandas(text, preserve_index=False), first / "d_text_types.parquet")
    offset = _good(rng, [f"u{i:03d}" for i in range(200)] + ["shared-d-e", "e00007"])
    offset_schema = EVENT_SCHEMA.set(1, pa.field("ts", pa.timestamp("us", tz="+00:00")))
    pq.write_table(_table(offset, offset_schema), first / "e_offset_tz.parquet")
    extra = _good(rng, [f"x{i:03d}" for i in range(100)] + ["e00008"]).assign(browser="firefox")
    pq.write_table(pa.Table.from_pandas(extra, preserve_index=False), first / "f_extra_column.parquet")
    typed = _good(rng, ["g1", "g2"]).assign(creative_id=[7, 8])
    pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), first / "g_int_creative.parquet")
    truncated = first / "h_truncated.parquet"
    pq.write_table(_table(_good(rng, [f"h{i}" for i in range(50)])), truncated)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    (first / "i_not_parquet.parquet").write_text("event_id,ts\n1,2\n")
    corrupt = first / "j_corrupt_middle.parquet"
    pq.write_table(_table(_good(rng, [f"j{i}" for i in range(100)])), corrupt, row_group_size=50)
    _corrupt_second_row_group(corrupt)
    pq.write_table(_table(_good(rng, [f"k{i}" for i in range(40)] + ["e00009"])), first / "sub" / "k.parquet")
    pq.write_table(EVENT_SCHEMA.empty_table(), first / "l_empty.parquet")
    many = _good(rng, [f"m{i:04d}" for i in range(500)]).assign(segment="\u00e9t\u00e9")  # all candidates
    pq.write_table(_table(many), first / "m_candidates.parquet", row_group_size=200)
    glob = _table(_good(rng, [f"o{i}" for i in range(20)]))
    pq.write_table(glob, first / "o[1].parquet")  # a glob pattern for DuckDB, matching o1.parquet
    pq.write_table(_table(_good(rng, [f"p{i}" for i in range(20)])), first / "o1.parquet")
    shutil.copy(first / "a_good.parquet", second / "a_good.parquet")  # every row seen before
    shutil.copy(first / "b_edge.parquet", second / "b_edge.parquet")  # its quarantine file is replaced
    later = _good(rng, [f"e{i:05d}" for i in range(2900, 3100)] + [f"z{i}" for i in range(30)] * 2)
    pq.write_table(_table(later), second / "n_later.parquet")
    return first, second


# --- comparison -------------------------------------------------------------------------------------------


def _outputs(ds: Path) -> dict:
    with duckdb.connect(str(ds / STATE_FILE), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        events = con.sql("SELECT * FROM events ORDER BY event_id").to_arrow_table()
    keys = [("creative_id", "ascending"), ("product_id", "ascending"), ("date", "ascending")]
    stats = pq.read_table(ds / STATS_FILE).sort_by([*keys, ("segment", "ascending")])
    quarantine = {p.name: pq.read_table(p) for p in sorted((ds / QUARANTINE_DIR).glob("*.parquet"))}
    report = {k: v for k, v in json.loads((ds / REPORT_FILE).read_text()).items() if k not in TIMINGS}
    return {"events": events, "stats": stats, "quarantine": quarantine, "report": report}


def _assert_same(new: dict, reference: dict) -> None:
    assert new["report"] == reference["report"]
    assert new["events"].equals(reference["events"]), "accepted events differ"
    assert new["stats"].equals(reference["stats"]), "creative_stats.parquet differs"
    assert list(new["quarantine"]) == list(reference["quarantine"])
    for name, table in reference["quarantine"].items():
        assert new["quarantine"][name].equals(table), f"quarantine file {name} differs"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _write_inputs(tmp_path_factory.mktemp("equivalence"))


def test_the_inputs_take_both_paths(inputs):
    first, _ = inputs
    files = list_event_files(first)
    sql = sorted(p.relative_to(first).as_posix() for p in files if ingest_module._sql_layout(p)[0])
    assert sql == [
        "a_good.parquet",
        "b_edge.parquet",
        "c_naive_large.parquet",
        "e_offset_tz.parquet",
        "j_corrupt_middle.parquet",  # its footer is fine: DuckDB fails on the data, the Python path reports it
        "l_empty.parquet",
        "m_candidates.parquet",
        "o1.parquet",
        "sub/k.parquet",
    ]
    assert sql_layout(pq.read_schema(first / "o[1].parquet")) is not None  # its name sends it to Python


@pytest.mark.parametrize("with_creatives", [True, False])
def test_sql_path_equals_the_python_path(inputs, tmp_path, with_creatives, monkeypatch):
    first, second = inputs
    creatives = _creatives() if with_creatives else None
    read_by_sql = []
    merge = ingest_module._Run.merge

    def spy(run):
        read_by_sql.append(sorted(file.name for file in run.checked))
        return merge(run)

    monkeypatch.setattr(ingest_module._Run, "merge", spy)
    new, reference = tmp_path / "new", tmp_path / "reference"
    reports = []
    for events in (first, second):
        ingest_events(events, new, CONFIG, creatives, AS_OF)
        reference_ingest(events, reference, CONFIG, creatives)
        outputs = _outputs(new)
        _assert_same(outputs, _outputs(reference))
        reports.append(outputs["report"])
    # The inputs exercise what they are meant to: both paths, every reason, repeats within and across runs.
    assert read_by_sql == [
        ["a_good.parquet", "b_edge.parquet", "c_naive_large.parquet", "e_offset_tz.parquet"]
        + ["l_empty.parquet", "m_candidates.parquet", "o1.parquet", "sub/k.parquet"],
        ["a_good.parquet", "b_edge.parquet", "n_later.parquet"],
    ]
    assert len(reports[0]["files_unreadable"]) == 3 and reports[0]["duplicate_in_run"] > 100
    assert min(reports[0]["quarantine_reasons"].values()) > 0 or not with_creatives
    assert reports[1]["duplicate_of_earlier_runs"] > 3000 and reports[1]["duplicate_in_run"] == 30
    assert reports[1]["rows_valid"] == 100 + 30


def test_first_run_counts(inputs, tmp_path):
    """What the first run must report, independently of either implementation."""
    first, _ = inputs
    report = ingest_events(first, tmp_path / "ds", CONFIG, _creatives(), AS_OF)
    assert sorted(f["file"] for f in report.files_unreadable) == [
        "h_truncated.parquet",
        "i_not_parquet.parquet",
        "j_corrupt_middle.parquet",
    ]
    assert report.quarantine_reasons == {
        "wrong_type": 1 + 2,  # the text ts, the integer creatives
        "null_id": 4,
        "missing_value": 5,
        "future_timestamp": 2 + 1,
        "unknown_creative": 1,
        "product_mismatch": 1,
    }
    # Repeats within the run: 100 in a_good, e00005/6/7/8/9, edge-004 (its first row is valid), the
    # candidate repeated, shared-d-e; late-first's first row is quarantined, so its later row is new.
    assert report.duplicate_in_run == 100 + 5 + 1 + 1 + 1
    assert report.rows_read == report.rows_valid + report.rows_duplicate + report.rows_quarantined
