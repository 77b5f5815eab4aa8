"""Ingestion against bare DuckDB on the same files: wall time and peak memory, alternated, each in a child.

    .venv/bin/python benchmarks/ingest_vs_duckdb.py [--events 10000000] [--files 20] [--rounds 2]

Generates ``--events`` events in ``--files`` parquet files with 1% repeated event_ids (the generator of
``ingest_throughput.py``), then runs, ``--rounds`` times and in a rotating order, each engine in a fresh
child process on the same files, with the local profile's DuckDB memory limit and threads:

- ``ingest``: ``caig.data.ingest.ingest_events`` into a fresh stats directory (every check, the quarantine,
  the accepted-events store, creative_stats.parquet, the report), with the seconds of each step of the
  accepted-events store (``steps_s``: scan, merge, write_stats, ...);
- ``ingest_before`` (with ``--before COMMIT``): the same call with the package as it was at COMMIT;
- ``duckdb_two_pass``: bare DuckDB, the fastest query found that gives the same stats: the first row of
  every repeated event_id from one aggregate, then one group-by joined to it;
- ``duckdb_qualify``: bare DuckDB, the same stats with ``QUALIFY row_number() OVER (PARTITION BY event_id
  ORDER BY file, row) = 1``;
- ``duckdb_distinct_on``: bare DuckDB, ``DISTINCT ON (event_id)`` keeping any row of a repeated event_id:
  the cheapest de-duplication, but not the same stats (a repeated id's other row may be kept).

Each child reports the seconds of its work (``work_s``: the call or the query, imports aside); the parent
records the child's wall seconds, CPU seconds and peak RSS (``os.wait4``). After the rounds, the state
growth: the first half of the files, then the second half, then all files again into one stats directory,
with the store's size on disk after each run. Results go to ``benchmarks/results/ingest_vs_duckdb.json``
(``ingest_vs_duckdb_<N>m.json`` for another ``--events``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from ingest_throughput import generate
from provenance import provenance

from caig.profile import load_profile

RESULTS = Path(__file__).parent / "results"
AS_OF = "2026-11-01T00:00:00+00:00"

INGEST_CHILD = """
import json, shutil, sys, time
from datetime import datetime
from pathlib import Path
import pandas as pd
from caig.data import event_store
from caig.data.ingest import ingest_events
from caig.profile import load_profile
events, out, creatives, as_of = sys.argv[1:5]
config = load_profile("local").data.ingest
steps = {}
def timed(name, method):  # seconds spent in each step of the accepted-events store
    def step(*args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            steps[name] = steps.get(name, 0.0) + time.perf_counter() - started
    return step
for name in STEPS:
    if hasattr(event_store.EventStore, name):
        setattr(event_store.EventStore, name, timed(name, getattr(event_store.EventStore, name)))
started = time.perf_counter()
report = ingest_events(Path(events), Path(out), config, pd.read_parquet(creatives), datetime.fromisoformat(as_of))
work_s = time.perf_counter() - started
keys = ["rows_read", "rows_valid", "rows_duplicate", "rows_quarantined", "stats_rows", "events_total"]
steps = {k: round(v, 2) for k, v in steps.items()}
steps["other"] = round(work_s - sum(steps.values()), 2)
print(json.dumps({"work_s": work_s, **{k: report.to_dict()[k] for k in keys}, "steps_s": steps}))
""".replace("STEPS", repr(("stage", "scan", "find_candidates", "merge", "write_stats", "totals")))

DUCKDB_CHILD = """
import json, sys, time
import duckdb
files, out, tmp, memory_limit, threads, variant = json.loads(sys.argv[1])
started = time.perf_counter()
con = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads, "temp_directory": tmp,
                             "preserve_insertion_order": False})
con.execute("SET TimeZone = 'UTC'")
rows = f"(SELECT (file_index::BIGINT << 40) + file_row_number AS seq, * FROM read_parquet({files!r}, file_row_number = true))"
if variant == "two_pass":
    kept = f'''WITH repeated AS (SELECT event_id, min(seq) AS first FROM {rows} GROUP BY event_id HAVING count(*) > 1)
               SELECT r.* FROM {rows} r LEFT JOIN repeated USING (event_id) WHERE first IS NULL OR r.seq = first'''
elif variant == "qualify":
    kept = f"SELECT * FROM {rows} QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY seq) = 1"
elif variant == "distinct_on":
    kept = f"SELECT DISTINCT ON (event_id) * FROM read_parquet({files!r})"
con.execute(f'''COPY (SELECT creative_id, product_id, make_timestamp(epoch_us(ts))::DATE AS date, segment,
                             count(*)::BIGINT AS impressions, sum(clicked::INTEGER)::BIGINT AS clicks
                      FROM ({kept}) GROUP BY ALL ORDER BY creative_id, date, segment)
                TO '{out}' (FORMAT parquet)''')
work_s = time.perf_counter() - started
stats_rows, events_total = con.execute(f"SELECT count(*), sum(impressions) FROM '{out}'").fetchone()
print(json.dumps({"work_s": work_s, "stats_rows": stats_rows, "events_total": int(events_total)}))
"""

ENGINES = ("ingest", "duckdb_two_pass", "duckdb_qualify", "duckdb_distinct_on", "ingest_before")
SAME_STATS = ("ingest", "duckdb_two_pass", "duckdb_qualify", "ingest_before")


def run_child(args: list[str], pythonpath: Path | None = None) -> dict:
    """Run ``python -c ...`` and return its JSON line with the child's wall, CPU seconds and peak RSS."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if pythonpath is not None:  # imported before the installed package
        env["PYTHONPATH"] = str(pythonpath)
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", *args], env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, its threads included
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        raise RuntimeError(f"child failed ({child.returncode}): {stderr[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wall_s"] = round(wall, 2)
    result["work_s"] = round(result["work_s"], 2)
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    result["load_1m_before"] = round(load, 2)
    return result


def run_engine(engine: str, files: list[Path], events_dir: Path, creatives: Path, work: Path, config) -> dict:
    out = work / f"out-{engine}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if engine in ("ingest", "ingest_before"):
        before = work / "before" / "src" if engine == "ingest_before" else None
        result = run_child([INGEST_CHILD, str(events_dir), str(out / "ds"), str(creatives), AS_OF], before)
        result["state_mb"] = round(_size_mb(out / "ds" / "ingest_state.duckdb"), 1)
        stats = out / "ds" / "creative_stats.parquet"
    else:
        stats = out / "creative_stats.parquet"
        spec = [[str(f) for f in files], str(stats), str(out / "tmp"), config.memory_limit, config.threads]
        result = run_child([DUCKDB_CHILD, json.dumps([*spec, engine.removeprefix("duckdb_")])])
    result["stats_file"] = str(stats)
    return result


def _same_rows(table, reference) -> bool:
    """The same columns and values in the same order (the nullability of the fields aside)."""
    return table.column_names == reference.column_names and all(
        table[name].combine_chunks().equals(reference[name].combine_chunks()) for name in table.column_names
    )


def _size_mb(path: Path) -> float:
    return path.stat().st_size / 2**20 if path.exists() else 0.0


def state_growth(files: list[Path], events_dir: Path, creatives: Path, work: Path) -> list[dict]:
    """Ingest the first half of the files, the second half, then all of them again into one directory."""
    half = len(files) // 2
    parts = {"first_half": files[:half], "second_half": files[half:], "all_again": files}
    ds = work / "growth" / "ds"
    runs = []
    for name, part in parts.items():
        folder = work / "growth" / name
        folder.mkdir(parents=True)
        for f in part:
            os.link(f, folder / f.name)
        result = run_child([INGEST_CHILD, str(folder), str(ds), str(creatives), AS_OF])
        result["run"] = name
        result["files"] = len(part)
        result["state_mb"] = round(_size_mb(ds / "ingest_state.duckdb"), 1)
        runs.append(result)
    return runs


def summary(rounds: list[dict]) -> dict:
    """Per engine: median work/wall seconds, peak RSS; the speed of ingest relative to each DuckDB query."""
    out = {}
    for engine in ENGINES:
        rows = [r[engine] for r in rounds if engine in r]
        if not rows:
            continue
        out[engine] = {
            key: round(statistics.median(r[key] for r in rows), 2)
            for key in ("work_s", "wall_s", "cpu_s", "peak_rss_mb")
        }
        out[engine]["peak_rss_mb_max"] = max(r["peak_rss_mb"] for r in rows)
    ingest = out["ingest"]
    steps = [r["ingest"]["steps_s"] for r in rounds]
    ingest["steps_s"] = {k: round(statistics.median(s.get(k, 0.0) for s in steps), 2) for k in steps[0]}
    for engine in ENGINES[1:]:  # ingest_speed_vs_ingest_before > 1: faster than before
        if engine in out:
            for key in ("work_s", "wall_s", "cpu_s"):
                # "0.7x DuckDB" = DuckDB's time / ingestion's time: 1 is as fast, higher is faster.
                out[f"ingest_speed_vs_{engine}_{key.removesuffix('_s')}"] = round(
                    out[engine][key] / ingest[key], 3
                )
            per_round = [r[engine]["work_s"] / r["ingest"]["work_s"] for r in rounds if engine in r]
            out[f"ingest_speed_vs_{engine}_work_per_round"] = [round(x, 3) for x in per_round]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated subset of " + ",".join(ENGINES)
    )
    parser.add_argument(
        "--before", help="a commit: also run ingestion as it was there (engine ingest_before)"
    )
    parser.add_argument("--no-growth", action="store_true", help="skip the state-growth runs")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed after)")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e and (e != "ingest_before" or args.before)]
    if args.before and "ingest_before" not in engines:
        engines.append("ingest_before")
    assert "ingest" in engines and set(engines) <= set(ENGINES), f"--engines: ingest and any of {ENGINES}"
    config = load_profile("local").data.ingest
    name = (
        "ingest_vs_duckdb.json"
        if args.events == 10_000_000
        else f"ingest_vs_duckdb_{args.events // 10**6}m.json"
    )
    with tempfile.TemporaryDirectory(prefix="caig-ingest-vs-duckdb-", dir=args.work) as tmp:
        work = Path(tmp)
        if args.before:
            (work / "before").mkdir()
            root = Path(__file__).resolve().parents[1]
            archive = subprocess.run(
                ["git", "archive", args.before, "src"], cwd=root, check=True, capture_output=True
            )
            subprocess.run(["tar", "-x", "-C", str(work / "before")], input=archive.stdout, check=True)
        started = time.perf_counter()
        events_dir, duplicates = generate(work, args.events, args.files)
        generate_s = time.perf_counter() - started
        files = sorted(events_dir.rglob("*.parquet"))
        creatives = work / "creatives.parquet"
        rounds = []
        for k in range(args.rounds):
            order = (
                engines[k % len(engines) :] + engines[: k % len(engines)]
            )  # rotate: no engine always first
            results = {"order": order}
            for engine in order:
                results[engine] = run_engine(engine, files, events_dir, creatives, work, config)
                print(f"round {k}: {engine} {results[engine]}", file=sys.stderr, flush=True)
            reference = pq.read_table(results["ingest"]["stats_file"])
            for engine in order:
                stats = pq.read_table(results[engine].pop("stats_file"))
                results[engine]["same_stats_as_ingest"] = _same_rows(stats, reference)
            rounds.append(results)
        growth = [] if args.no_growth else state_growth(files, events_dir, creatives, work)
        input_mb = sum(_size_mb(f) for f in files)
    for results in rounds:
        ingest = results["ingest"]
        assert ingest["rows_read"] == args.events and ingest["rows_duplicate"] == duplicates
        for engine in SAME_STATS:
            assert engine not in results or results[engine]["same_stats_as_ingest"], f"{engine}: other stats"
    if growth:
        assert growth[-1]["rows_valid"] == 0 and growth[-1]["events_total"] == args.events - duplicates
    record = provenance()
    result = {
        **record,
        "benchmark": "ingest_vs_duckdb",
        "events": args.events,
        "files": args.files,
        "duplicate_event_ids": duplicates,
        "parquet_input_mb": round(input_mb, 1),
        "generate_s": round(generate_s, 1),
        "config": {
            "memory_limit": config.memory_limit,
            "threads": config.threads,
            "batch_rows": config.batch_rows,
        },
        "engines": engines,
        "before": args.before,
        "summary": summary(rounds),
        "rounds": rounds,
        "state_growth": growth,
        "note": "work_s: the ingest_events call or the DuckDB query in the child; wall_s: the child process "
        "(interpreter and imports included); cpu_s, peak_rss_mb: the child's rusage (os.wait4). "
        "ingest_speed_vs_X = X's seconds / ingestion's seconds.",
    }
    out = RESULTS / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
