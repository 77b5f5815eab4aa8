"""Ingestion throughput: generate N events in the event schema (default 10 million), ingest them, and
record events/s and the peak resident memory of the ingesting process.

    .venv/bin/python benchmarks/ingest_throughput.py [--events 10000000] [--files 20]

Events are generated in chunks straight to parquet in a temporary folder (never all in memory), with
1% of event_ids repeated from the previous chunk so that de-duplication has work to do. Ingestion runs in
a child process (``caig.data.ingest.ingest_events`` with the local profile's ingest config), three times:
the first run accepts the events, the second re-ingests the same files and must add nothing (idempotency),
the third ingests them into a fresh directory with a smaller DuckDB memory limit (default 256MB), to show
that peak memory follows the configured limit and not the size of the logs.
Results go to ``benchmarks/results/ingest_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from provenance import provenance

from caig.data.events import EVENT_SCHEMA
from caig.profile import load_profile

RESULTS = Path(__file__).parent / "results" / "ingest_throughput.json"
N_CREATIVES = 20_000
SEGMENTS = np.array(["young", "family", "professional", "senior"], dtype=object)
START = pd.Timestamp("2026-10-01", tz="UTC").value // 1000  # microseconds
DAYS = 28

CHILD = """
import json, resource, sys
from datetime import datetime, timezone
from pathlib import Path
import pandas as pd
from caig.data.ingest import ingest_events
from caig.profile import load_profile
events, out, creatives, memory_limit = sys.argv[1:5]
config = load_profile("local", [f"data.ingest.memory_limit={memory_limit}"]).data.ingest
report = ingest_events(Path(events), Path(out), config, pd.read_parquet(creatives),
                       datetime(2026, 11, 1, tzinfo=timezone.utc))
keys = ["rows_read", "rows_valid", "rows_duplicate", "rows_quarantined", "elapsed_s", "events_per_s",
        "stats_rows", "events_total"]
result = {k: report.to_dict()[k] for k in keys}
usage = resource.getrusage(resource.RUSAGE_SELF)
result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)  # whole process, DuckDB threads included
print(json.dumps(result))
"""


def generate(directory: Path, n_events: int, n_files: int, seed: int = 0) -> tuple[Path, int]:
    """Write ``n_files`` parquet files of events and creatives.parquet; return (events dir, duplicates)."""
    rng = np.random.default_rng(seed)
    events_dir = directory / "events"
    events_dir.mkdir(parents=True)
    creative_ids = np.array([f"C{i:06d}" for i in range(N_CREATIVES)], dtype=object)
    product_ids = np.array([f"P{i // 10:05d}" for i in range(N_CREATIVES)], dtype=object)
    pd.DataFrame({"creative_id": creative_ids, "product_id": product_ids}).to_parquet(
        directory / "creatives.parquet", index=False
    )
    sizes = np.full(n_files, n_events // n_files)
    sizes[: n_events % n_files] += 1
    start, duplicates, previous = 0, 0, None
    for k, size in enumerate(sizes):
        ids = np.arange(start, start + size)
        start += size
        if previous is not None:  # 1% of the rows repeat an event_id of the previous file
            repeat = size // 100
            ids[:repeat] = rng.choice(previous, repeat, replace=False)
            duplicates += int(repeat)
        previous = ids[size // 100 :]
        digits = pc.utf8_lpad(pc.cast(pa.array(ids), pa.string()), 10, "0")
        creative = rng.integers(0, N_CREATIVES, size)
        table = pa.table(
            {
                "event_id": pc.binary_join_element_wise("bench-", digits, ""),
                "ts": pa.array(
                    START + rng.integers(0, DAYS * 86_400_000_000, size), pa.timestamp("us", tz="UTC")
                ),
                "product_id": pa.array(product_ids[creative], pa.string()),
                "creative_id": pa.array(creative_ids[creative], pa.string()),
                "segment": pa.array(SEGMENTS[rng.integers(0, len(SEGMENTS), size)], pa.string()),
                "clicked": pa.array(rng.random(size) < 0.04),
            },
            schema=EVENT_SCHEMA,
        )
        pq.write_table(table, events_dir / f"part-{k:05d}.parquet")
    return events_dir, duplicates


def ingest_child(events_dir: Path, out: Path, creatives: Path, memory_limit: str) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(events_dir), str(out), str(creatives), memory_limit],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--small-memory-limit", default="256MB", help="DuckDB limit of the third, fresh run")
    args = parser.parse_args()
    config = load_profile("local").data.ingest
    with tempfile.TemporaryDirectory(prefix="caig-ingest-bench-") as tmp:
        tmp_path = Path(tmp)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        events_dir, duplicates = generate(tmp_path, args.events, args.files)
        generate_s = time.perf_counter() - started
        size_mb = sum(p.stat().st_size for p in events_dir.glob("*.parquet")) / 2**20
        creatives = tmp_path / "creatives.parquet"
        first = ingest_child(events_dir, tmp_path / "ds", creatives, config.memory_limit)
        again = ingest_child(events_dir, tmp_path / "ds", creatives, config.memory_limit)
        state_mb = (tmp_path / "ds" / "ingest_state.duckdb").stat().st_size / 2**20
        shutil.rmtree(tmp_path / "ds")
        small = ingest_child(events_dir, tmp_path / "ds_small", creatives, args.small_memory_limit)
    assert first["rows_read"] == args.events and first["rows_duplicate"] == duplicates
    assert again["rows_valid"] == 0 and again["rows_duplicate"] == args.events
    assert small["events_total"] == first["events_total"] and small["stats_rows"] == first["stats_rows"]
    record = provenance()
    result = {
        **record,
        "benchmark": "ingest_throughput",
        "events": args.events,
        "files": args.files,
        "duplicate_event_ids": duplicates,
        "parquet_input_mb": round(size_mb, 1),
        "generate_s": round(generate_s, 1),
        "first_ingest": first,
        "reingest_same_files": again,
        f"first_ingest_memory_limit_{args.small_memory_limit}": small,
        "state_db_mb": round(state_mb, 1),
        "ingest_config": {
            "batch_rows": config.batch_rows,
            "memory_limit": config.memory_limit,
            "threads": config.threads,
        },
        "machine": {**record["machine"], "python": platform.python_version()},
        "load_average_1m_before": round(load_before, 2),  # the 2 cores are shared with other work
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
