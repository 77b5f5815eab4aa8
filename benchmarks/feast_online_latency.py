"""Feast online lookup latency: what the creative selector pays per request, SQLite and Redis online stores.

    .venv/bin/python benchmarks/feast_online_latency.py [--products 300] [--creatives 8] [--lookups 2000]

Builds a world with the local profile (sizes from the flags), ingests its events with ``caig.data.ingest``,
applies and materializes the Feast store twice (local SQLite, and the real Redis on 127.0.0.1:6379 under a
throw-away project in db 9, deleted afterwards), then times ``ProductFeatureReader.get`` (a product's
profile and, for each of its creatives, the ``selector_online_v1`` features: two online reads) and a single
one-feature read, for random products. Results go to ``benchmarks/results/feast_online_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import redis
from provenance import provenance

from caig.data.ingest import ingest_events
from caig.features.config import FeaturesConfig
from caig.features.online import ProductFeatureReader, materialize
from caig.features.store import apply, open_store, store_dir
from caig.profile import load_profile
from caig.world.build import build_world

RESULTS = Path(__file__).parent / "results" / "feast_online_latency.json"
REDIS_DB = 9


def build_run(run: Path, products: int, creatives: int, events: int) -> None:
    """World and ingested stats in the local profile's run layout."""
    profile = load_profile(
        "local",
        [
            f"world.n_products={products}",
            f"world.n_creatives_per_product={creatives}",
            f"world.n_events={events}",
            "world.image_size=32",
            "world.contact_sheet_products=1",
        ],
    )
    build_world(profile.world, run / "world", seed=0, pair_rule=profile.data.pairs)
    ingest_events(
        run / "world" / "events",
        run / "data",
        profile.data.ingest,
        pd.read_parquet(run / "world" / "creatives.parquet"),
        datetime(2030, 1, 1, tzinfo=UTC),
    )


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def time_store(config: FeaturesConfig, run: Path, lookups: int, products: int) -> dict:
    apply(config, run)
    store = open_store(config, store_dir(config, run))
    materialize(store, datetime.now(UTC))
    reader = ProductFeatureReader(store)
    rng = np.random.default_rng(0)
    ids = [f"P{i:05d}" for i in rng.integers(0, products, lookups)]
    for pid in ids[:50]:  # warm-up: connections, caches
        reader.get(pid)
    product_times, single_times = [], []
    for pid in ids:
        started = time.perf_counter()
        answer = reader.get(pid)
        product_times.append(time.perf_counter() - started)
        creative = answer["creatives"][0]["creative_id"]
        started = time.perf_counter()
        store.get_online_features(
            features=["creative_ctr_stats:ctr_7d"], entity_rows=[{"creative_id": creative}]
        )
        single_times.append(time.perf_counter() - started)
    return {
        "product_lookup": percentiles(product_times),
        "single_feature_read": percentiles(single_times),
        "creatives_per_lookup": len(answer["creatives"]),
        "store": store,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--creatives", type=int, default=8)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load_at_start = round(os.getloadavg()[0], 2)
    record = provenance()
    results: dict = {
        **record,
        "world_seed": 0,
        "lookups": args.lookups,
        "products": args.products,
        "creatives_per_product": args.creatives,
        "events": args.events,
    }
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        build_run(run, args.products, args.creatives, args.events)
        sqlite = time_store(FeaturesConfig(store_dir=str(run / "sqlite")), run, args.lookups, args.products)
        sqlite.pop("store")
        results["sqlite"] = sqlite
        project = f"caig_bench_{uuid.uuid4().hex[:8]}"
        config = FeaturesConfig(
            project=project,
            online_store="redis",
            store_dir=str(run / "redis"),
            redis_connection_string=f"127.0.0.1:6379,db={REDIS_DB}",
        )
        client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
        try:
            results["redis"] = time_store(config, run, args.lookups, args.products)
            results["redis"].pop("store").teardown()
        finally:
            leftover = list(client.scan_iter(match=f"*{project}", count=1000))
            if leftover:
                client.delete(*leftover)
    import feast

    results["machine"] = {
        **record["machine"],
        "python": platform.python_version(),
        "feast": feast.__version__,
        "load_avg_1m_start": load_at_start,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
